import { type Kysely, sql } from 'kysely';

/**
 * Host reports (written by the notifier from heartbeats that carry a usage sample; read by
 * `GET /api/v2/reports`; pruned by the API's retention after REPORT_RETENTION_DAYS):
 *
 *   host_reports  one per sample: host, device_group (from the heartbeat; null without one),
 *                 created_at (server time of the first heartbeat carrying it), gathered_at (the
 *                 worker's time of the sample: with host, its identity, so a redelivered or repeated
 *                 heartbeat stores nothing), updated (the host's running revisions changed since its
 *                 previous report), revisions (what ran, to tell the next one), usage
 *   hosts.usage   the latest sample, for `nebula hosts get`
 *
 * Paging is by id; filters by host and by time use their own indexes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('host_reports')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('device_group', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('inserted_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('gathered_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated', 'boolean', (c) => c.notNull())
    .addColumn('revisions', 'jsonb', (c) => c.notNull())
    .addColumn('usage', 'jsonb', (c) => c.notNull())
    .addUniqueConstraint('host_reports_sample', ['host', 'gathered_at'])
    .execute();
  await sql`create index host_reports_host on host_reports (host, id)`.execute(db);
  await sql`create index host_reports_created on host_reports (created_at)`.execute(db);
  await sql`alter table hosts add column usage jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table hosts drop column usage`.execute(db);
  await db.schema.dropTable('host_reports').execute();
}
