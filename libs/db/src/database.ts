import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';

/**
 * The whole PostgreSQL schema, one table interface per table. The API and the notifier share one
 * database; each table has one writer (noted on its interface).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Database {}

export function createDb<DB = Database>(url: string, max = 10): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max }) }) });
}

export async function pingDb<DB>(db: Kysely<DB>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
