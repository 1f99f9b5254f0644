import { type Kysely, sql } from 'kysely';

/**
 * The outbox's dead letters: a row that can never be published (too large for the server, no
 * permission on its subject) is set aside with its error instead of being retried forever, and its
 * rollout carries the error. The relay reads the next row of each app (subject) on its own, hence the
 * index by subject.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('outbox').addColumn('dead_at', 'timestamptz').addColumn('error', 'text').execute();
  await sql`create index outbox_pending_by_subject on outbox (subject, id) where published_at is null and dead_at is null`.execute(db);
  await db.schema.alterTable('rollouts').addColumn('publish_error', 'text').addColumn('publish_failed_at', 'timestamptz').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index outbox_pending_by_subject`.execute(db);
  await db.schema.alterTable('outbox').dropColumn('dead_at').dropColumn('error').execute();
  await db.schema.alterTable('rollouts').dropColumn('publish_error').dropColumn('publish_failed_at').execute();
}
