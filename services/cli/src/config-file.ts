import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { InputFileError } from './errors.ts';

/**
 * An app config from a JSON or YAML file (`-` reads standard input). YAML 1.2 is a superset of JSON,
 * so one parser reads both. The fields the API adds to an app it answers (`app_name`, `app_id`,
 * `incarnation`, `rollout_id`, `rollout`, `publish_errors`) are dropped, so the output of `nebula apps get <app> --json`
 * can be edited and sent back; the config itself is checked by the API, which names every wrong field.
 */
const ANSWER_ONLY_FIELDS = ['app_id', 'incarnation', 'rollout_id', 'rollout', 'publish_errors'];

export function readConfigFile(path: string, app: string, readStdin: () => string): Record<string, unknown> {
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
    throw new InputFileError(`${path} must hold an object of app settings (e.g. docker_image: nginx:1.27)`);
  const config = { ...(value as Record<string, unknown>) };
  const named = config.app_name ?? config.name;
  if (named !== undefined && named !== app) throw new InputFileError(`${path} is for app "${String(named)}", not "${app}"`);
  delete config.app_name;
  delete config.name;
  for (const k of ANSWER_ONLY_FIELDS) delete config[k];
  return config;
}
