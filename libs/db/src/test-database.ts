import { randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { createDb } from './database.ts';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://nebula:nebula@127.0.0.1:5432/nebula';

/** For tests: a throwaway database on the real PostgreSQL of the local stack, dropped by `drop()`. */
export async function createTestDatabase(): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `nebula_test_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export function kyselyFor<DB = unknown>(url: string): Kysely<DB> {
  return createDb<DB>(url, 5);
}

export async function tableExists(db: Kysely<unknown>, table: string): Promise<boolean> {
  const r = await sql<{ exists: boolean }>`select to_regclass(${table}) is not null as exists`.execute(db);
  return r.rows[0]?.exists === true;
}
