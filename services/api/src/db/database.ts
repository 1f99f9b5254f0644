import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Database {}

export function createDb(url: string, max = 10): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max }) }) });
}

export async function pingDb(db: Kysely<Database>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
