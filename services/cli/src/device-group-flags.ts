import type { Values } from './command-line.ts';
import { UsageError } from './errors.ts';

/**
 * The flags of `nebula device-groups create|update`, checked before anything is sent (a wrong one
 * is a UsageError, exit 2) and turned into the API's fields.
 */
/** `a,b,c` as a list of names (`--apps ''`: the empty list). */
export function nameList(value: string | undefined, flag: string): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  for (const n of names) if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(n)) throw new UsageError(`${flag}: "${n}" is not a name (letters, digits, "_" and "-")`);
  return names;
}

/** The patch `update` sends; a UsageError when it would change nothing. */
export function groupPatchOf(values: Values): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const apps = nameList(values.apps, '--apps');
  const jobs = nameList(values['cron-jobs'], '--cron-jobs');
  if (apps !== undefined) out.apps = apps;
  if (jobs !== undefined) out.cron_jobs = jobs;
  for (const [flag, key] of [
    ['add-app', 'add_apps'],
    ['remove-app', 'remove_apps'],
    ['add-cron-job', 'add_cron_jobs'],
    ['remove-cron-job', 'remove_cron_jobs'],
  ] as const) {
    const v = values[flag];
    if (v !== undefined && v.length > 0) out[key] = v.flatMap((x) => nameList(x, `--${flag}`) ?? []);
  }
  if (Object.keys(out).length === 0)
    throw new UsageError('"device-groups update" needs --apps, --cron-jobs, --add-app, --remove-app, --add-cron-job or --remove-cron-job');
  return out;
}
