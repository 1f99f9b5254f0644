import type { V2Response } from './v2-types.ts';

/**
 * A boolean query parameter (`?dry_run=true`, `?full=true`): absent is false; anything but "true" or
 * "false" is the caller's mistake, answered 400 naming the parameter (not taken as false, which would
 * turn a mistyped dry run into a real change).
 */
export function queryFlag(query: URLSearchParams, name: string): { ok: true; value: boolean } | { ok: false; res: V2Response } {
  const values = query.getAll(name);
  if (values.length === 0) return { ok: true, value: false };
  const [only, ...more] = values;
  if (more.length === 0 && (only === 'true' || only === 'false')) return { ok: true, value: only === 'true' };
  return { ok: false, res: { status: 400, body: { errors: { [name]: ['must be true or false, once'] } } } };
}
