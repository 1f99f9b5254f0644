import { createHash } from 'node:crypto';
import type { CompiledQuery } from 'kysely';

/**
 * The hot statements, as named prepared statements: PostgreSQL parses and plans such a statement
 * once per connection (after five runs it may keep one generic plan) instead of on every run. For
 * an app's view that planning was ~0.7 ms of the ~1 ms the server spent on it. Only statements
 * marked here are prepared, each text once per connection for the connection's life: a bounded set,
 * chosen by the code (a text with values inlined would be a new statement every time).
 *
 * Behind a connection pooler, it must keep prepared statements per client (PgBouncer in session
 * mode, or 1.21+ with `max_prepared_statements`).
 */
const names = new Map<string, string>();

/** More distinct texts than this is a bug (values in the text): the rest run unprepared. */
export const MAX_PREPARED = 256;

/** `q`, marked to run as a prepared statement; execute it with `db.executeQuery`. */
export function prepared<R>(q: CompiledQuery<R>): CompiledQuery<R> {
  if (!names.has(q.sql) && names.size < MAX_PREPARED) names.set(q.sql, `nebula_${createHash('sha256').update(q.sql).digest('hex').slice(0, 32)}`);
  return q;
}

/** The statement name of a marked text, or undefined (an ordinary, unnamed statement). */
export function preparedName(sql: string): string | undefined {
  return names.get(sql);
}
