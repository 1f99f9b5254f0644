import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { InputFileError } from './errors.ts';

/**
 * An app (or cron job) config from a JSON or YAML file (`-` reads standard input). YAML 1.2 is a
 * superset of JSON, so one parser reads both. The fields the API adds to an app it answers (`app_name`,
 * `app_id`, `incarnation`, `rollout_id`, `rollout`, `publish_errors`; a cron job's `cron_job_name`,
 * `cron_job_id`, `created_at`, `updated_at`) are dropped, so the output of `nebula apps get <app> --json`
 * can be edited and sent back; the config itself is checked by the API, which names every wrong field.
 */
export interface ConfigKind {
  /** "app", "cron job": for messages. */
  noun: string;
  /** The field that names the thing (checked against the command's argument, then dropped). */
  nameField: string;
  answerOnly: readonly string[];
}

export const APP_CONFIG: ConfigKind = {
  noun: 'app',
  nameField: 'app_name',
  answerOnly: ['app_id', 'incarnation', 'rollout_id', 'rollout', 'publish_errors'],
};
export const CRON_JOB_CONFIG: ConfigKind = { noun: 'cron job', nameField: 'cron_job_name', answerOnly: ['cron_job_id', 'created_at', 'updated_at'] };

export function readConfigFile(path: string, app: string, readStdin: () => string, kind: ConfigKind = APP_CONFIG): Record<string, unknown> {
  let text: string;
  try {
    text = path === '-' ? readStdin() : readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputFileError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new InputFileError(`${path} is neither JSON nor YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InputFileError(`${path} must hold an object of ${kind.noun} settings (e.g. docker_image: nginx:1.27)`);
  const config = { ...(value as Record<string, unknown>) };
  const named = config[kind.nameField] ?? config.name;
  if (named !== undefined && named !== app) throw new InputFileError(`${path} is for ${kind.noun} "${String(named)}", not "${app}"`);
  delete config[kind.nameField];
  delete config.name;
  for (const k of kind.answerOnly) delete config[k];
  return config;
}
