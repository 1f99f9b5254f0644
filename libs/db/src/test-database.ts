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
      try {
        // An autovacuum worker on the new database has no role that `nebula` may signal, so FORCE
        // refuses (42501) while it runs; it finishes in moments, so the drop is tried again.
        for (let attempt = 1; ; attempt++) {
          try {
            await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
            return;
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (attempt >= 20 || (code !== '42501' && code !== '55006')) throw err;
            await new Promise((r) => setTimeout(r, 250));
          }
        }
      } finally {
        await c.end();
      }
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
