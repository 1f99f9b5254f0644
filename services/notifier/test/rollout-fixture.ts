import { type AppConfig, appConfigSchema, type RolloutStrategyInput } from '@nebula/contracts';
import { changeApp, createApp, createTestDatabase, type Database, type Kysely, kyselyFor, migrateToLatest, sql } from '@nebula/db';

/** A database with an app and hosts, as the API and the notifier would have written them, for rollout tests. */
export async function rolloutFixture() {
  const tdb = await createTestDatabase();
  const db: Kysely<Database> = kyselyFor<Database>(tdb.url);
  await migrateToLatest(db);
  const opts = { actor: 'alice', offlineAfterMissedHeartbeats: 3 };

  const config = (image: string, strategy: RolloutStrategyInput | null = null): AppConfig =>
    appConfigSchema.parse({ docker_image: image, rollout_strategy: strategy });

  return {
    db,
    opts,
    config,
    /** Hosts serving `app`, online now (the database's clock) unless `offline`. */
    async hosts(ids: string[], app = 'web', offline = false) {
      await db
        .insertInto('hosts')
        .values(
          ids.map((id) => ({
            id,
            apps: [app],
            running: '[]',
            cores: 2,
            memory_mb: 1024,
            worker_version: '0.1.0',
            heartbeat_interval_seconds: 5,
            last_seen: offline ? sql<Date>`now() - interval '1 hour'` : sql<Date>`now()`,
          })),
        )
        .onConflict((oc) =>
          oc.column('id').doUpdateSet({
            apps: sql<string[]>`array(select distinct unnest(hosts.apps || excluded.apps))`,
            last_seen: offline ? sql<Date>`now() - interval '1 hour'` : sql<Date>`now()`,
          }),
        )
        .execute();
    },
    create: (name: string, c: AppConfig) => createApp(db, name, c, opts),
    update: (name: string, c: AppConfig) => changeApp(db, name, () => ({ action: 'update', config: c }), opts),
    /** A host's result for a rollout, as the notifier writes it. */
    async result(rolloutId: string, host: string, status: 'applied' | 'failed', error: string | null = null) {
      await db
        .insertInto('rollout_hosts')
        .values({
          rollout_id: rolloutId,
          host,
          status,
          error,
          image_digest: null,
          containers: '[]',
          pull_ms: 1,
          apply_ms: 2,
          reported_at: sql<Date>`clock_timestamp()`,
        })
        .onConflict((oc) => oc.columns(['rollout_id', 'host']).doUpdateSet({ status, error, reported_at: sql<Date>`clock_timestamp()` }))
        .execute();
    },
    async rollout(id: string) {
      return db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    },
    async waves(id: string) {
      return db.selectFrom('rollout_waves').selectAll().where('rollout_id', '=', id).orderBy('wave').execute();
    },
    /** The app's outbox messages, oldest first. */
    async messages(app = 'web') {
      const rows = await db.selectFrom('outbox').select(['msg_id', 'payload']).where('subject', '=', `apps.${app}`).orderBy('id').execute();
      return rows.map((r) => ({
        msgId: r.msg_id,
        ...(r.payload as {
          v: number;
          revision: number;
          action: string;
          rollout_id: string;
          wave?: { step: number; hosts: string[]; base: { revision: number } | null };
        }),
      }));
    },
    async close() {
      await db.destroy();
      await tdb.drop();
    },
  };
}
