import { type Kysely, sql } from 'kysely';

/**
 * Device groups (written by the API), and the group a host's credential covers:
 *
 *   device_groups                 one row per incarnation of a group: its name, the original's
 *                                 `device_group_id` (1, +1 per change of its lists) and `prune_id`
 *                                 (1, +1 per prune), `seq` (+1 per group message: hosts order by it),
 *                                 the apps and cron jobs it names, created/updated, deleted_at (soft,
 *                                 as apps and cron jobs). A group made again under a deleted one's
 *                                 name starts its three counters above the deleted one's, so a host
 *                                 that remembers the old group sees the new one as newer.
 *   host_credentials.device_group the group whose consumer on GROUPS and rights the host's
 *                                 credential has (null: none)
 *
 * A name is unique among live groups only (a partial unique index).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('device_groups')
    .addColumn('incarnation', 'bigserial', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('device_group_id', 'integer', (c) => c.notNull().check(sql`device_group_id > 0`))
    .addColumn('prune_id', 'integer', (c) => c.notNull().check(sql`prune_id > 0`))
    .addColumn('seq', 'integer', (c) => c.notNull().check(sql`seq > 0`))
    .addColumn('apps', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('cron_jobs', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deleted_at', 'timestamptz')
    .execute();
  await sql`CREATE UNIQUE INDEX device_groups_live_name ON device_groups (name) WHERE deleted_at IS NULL`.execute(db);
  await sql`CREATE INDEX device_groups_name ON device_groups (name, incarnation DESC)`.execute(db);
  // "Which live groups name this app / cron job" (deletes are refused while one does; a job's update writes their messages).
  await sql`CREATE INDEX device_groups_live_apps ON device_groups USING gin (apps) WHERE deleted_at IS NULL`.execute(db);
  await sql`CREATE INDEX device_groups_live_cron_jobs ON device_groups USING gin (cron_jobs) WHERE deleted_at IS NULL`.execute(db);
  await db.schema.alterTable('host_credentials').addColumn('device_group', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('host_credentials').dropColumn('device_group').execute();
  await db.schema.dropTable('device_groups').execute();
}
