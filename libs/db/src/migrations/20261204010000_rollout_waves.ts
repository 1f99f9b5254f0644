import { type Kysely, sql } from 'kysely';

/**
 * Rollouts in waves (written by the API when a change starts one, then by the notifier's rollout
 * controller and by rollout commands):
 *
 *   rollouts       strategy (null: all at once, the state derived from results), state (null: all at
 *                  once), members (the hosts serving the app at the start, online or not), wave (the
 *                  current one, 1-based), step (of the newest message: grows with each wave and each
 *                  retry), base (the revision the other hosts run meanwhile, as the messages carry it),
 *                  paused_reason (manual | promotion | budget), retried (host -> when its failure was
 *                  retried: older results of it no longer count), waived (hosts whose failures a
 *                  resume accepted), abort_reason, rollback_rollout_id, state_changed_at
 *   rollout_waves  one per planned wave: its percent, own hosts, counted hosts (online when it
 *                  started: the ones in the budget and waited for), started_at, finished_at
 *   app_revisions  reason: why a revision was made when no person made it (a rollback by the controller)
 *
 * The controller reads the active rollouts every tick: a partial index holds only those.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table rollouts
      add column strategy jsonb,
      add column state text,
      add column members text[],
      add column wave int,
      add column step int,
      add column base jsonb,
      add column paused_reason text,
      add column retried jsonb not null default '{}',
      add column waived text[] not null default '{}',
      add column abort_reason text,
      add column rollback_rollout_id uuid,
      add column state_changed_at timestamptz`.execute(db);
  await sql`create index rollouts_active on rollouts (created_at) where state in ('rolling', 'paused')`.execute(db);
  await db.schema
    .createTable('rollout_waves')
    .addColumn('rollout_id', 'uuid', (c) => c.notNull().references('rollouts.id').onDelete('cascade'))
    .addColumn('wave', 'integer', (c) => c.notNull())
    .addColumn('percent', 'double precision', (c) => c.notNull())
    .addColumn('hosts', sql`text[]`, (c) => c.notNull())
    .addColumn('counted', sql`text[]`)
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addPrimaryKeyConstraint('rollout_waves_pk', ['rollout_id', 'wave'])
    .execute();
  await sql`alter table app_revisions add column reason text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table app_revisions drop column reason`.execute(db);
  await db.schema.dropTable('rollout_waves').execute();
  await sql`drop index rollouts_active`.execute(db);
  await sql`
    alter table rollouts
      drop column strategy, drop column state, drop column members, drop column wave, drop column step,
      drop column base, drop column paused_reason, drop column retried, drop column waived,
      drop column abort_reason, drop column rollback_rollout_id, drop column state_changed_at`.execute(db);
}
