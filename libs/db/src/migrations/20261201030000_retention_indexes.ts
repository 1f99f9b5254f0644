import { type Kysely, sql } from 'kysely';

/**
 * Indexes for the reads that page and the retention that prunes (services/api/src/db/retention.ts):
 *
 *   rollouts_app_created_id      an app's rollouts newest first, `before` a (created_at, id) cursor
 *                                (replaces rollouts_app_created, which lacked the id tie-break)
 *   rollouts_app_revision        the newest later rollout of an app (`superseded_by`)
 *   rollouts_created_at          expired rollouts, oldest first
 *   outbox_published_at          expired published rows (partial: unpublished rows have their own)
 *   hosts_last_seen              hosts not seen for the retention period
 *
 * History pages use app_revisions' primary key (incarnation, revision); a rollout's results are
 * found and deleted by rollout_hosts' primary key (rollout_id, host).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index rollouts_app_created_id on rollouts (app, created_at desc, id desc)`.execute(db);
  await sql`drop index rollouts_app_created`.execute(db);
  await sql`create index rollouts_app_revision on rollouts (app, incarnation desc, revision desc)`.execute(db);
  await sql`create index rollouts_created_at on rollouts (created_at)`.execute(db);
  await sql`create index outbox_published_at on outbox (published_at) where published_at is not null`.execute(db);
  await sql`create index hosts_last_seen on hosts (last_seen)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const name of ['hosts_last_seen', 'outbox_published_at', 'rollouts_created_at', 'rollouts_app_revision'])
    await sql`drop index ${sql.id(name)}`.execute(db);
  await sql`create index rollouts_app_created on rollouts (app, created_at desc)`.execute(db);
  await sql`drop index rollouts_app_created_id`.execute(db);
}
