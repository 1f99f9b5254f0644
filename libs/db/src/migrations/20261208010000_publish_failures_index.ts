import { type Kysely, sql } from 'kysely';

/**
 * The revisions of an incarnation that could never be published (`getLiveAppView`, read by
 * every `GET /api/v2/apps/<name>`): partial, so it holds only the dead letters. Without it each read
 * of an app scanned every rollout of every app.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index rollouts_publish_failures on rollouts (incarnation, revision desc) where publish_error is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index rollouts_publish_failures`.execute(db);
}
