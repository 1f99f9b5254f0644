import { type Kysely, sql } from 'kysely';

/**
 * What each host freed for each prune of its device group (written by the notifier from the hosts'
 * PruneReports; listed by `GET /api/v2/prunes`; deleted by the API's retention after RETENTION_DAYS):
 *
 *   host_prunes   one row per (host, device_group, prune_id): bytes freed, the images removed, an
 *                 error when the prune failed, reported_at (server time of the report: a redelivered
 *                 or repeated report changes nothing)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('host_prunes')
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('device_group', 'text', (c) => c.notNull())
    .addColumn('prune_id', 'integer', (c) => c.notNull().check(sql`prune_id > 0`))
    .addColumn('bytes_freed', 'bigint', (c) => c.notNull().check(sql`bytes_freed >= 0`))
    .addColumn('images_removed', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('error', 'text')
    .addColumn('reported_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('host_prunes_pk', ['host', 'device_group', 'prune_id'])
    .execute();
  // The listing reads one group's prunes (one prune's, newest first); retention reads by age.
  await sql`CREATE INDEX host_prunes_group ON host_prunes (device_group, prune_id DESC, host)`.execute(db);
  await sql`CREATE INDEX host_prunes_reported_at ON host_prunes (reported_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('host_prunes').execute();
}
