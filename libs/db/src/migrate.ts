import { type Kysely, type Migration, type MigrationResultSet, Migrator, sql } from 'kysely';
import { migrations } from './migrations/index.ts';

/** Arbitrary constant: the advisory lock that serialises migrations across API replicas. */
const MIGRATION_LOCK_ID = 727_001;

export class MigrationError extends Error {
  override name = 'MigrationError';
}

function check(result: MigrationResultSet): void {
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new MigrationError(`migration ${failed?.migrationName ?? '?'} failed`, { cause: result.error });
  }
}

/**
 * Applies every pending migration. Replicas starting together wait on a session-level advisory lock
 * (on one dedicated connection) so exactly one applies them; the others then find nothing to do.
 */
export async function migrateToLatest<DB>(db: Kysely<DB>, set: Record<string, Migration> = migrations): Promise<string[]> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_ID})`.execute(conn);
    try {
      const migrator = new Migrator({ db: conn, provider: { getMigrations: async () => set }, allowUnorderedMigrations: true });
      const result = await migrator.migrateToLatest();
      check(result);
      return (result.results ?? []).map((r) => r.migrationName);
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`.execute(conn);
    }
  });
}

/** Rolls back the newest applied migration. */
export async function migrateDown<DB>(db: Kysely<DB>, set: Record<string, Migration> = migrations): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => set }, allowUnorderedMigrations: true });
  const result = await migrator.migrateDown();
  check(result);
  return (result.results ?? []).map((r) => r.migrationName);
}
