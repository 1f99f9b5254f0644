import { connect } from '@nats-io/transport-node';
import { createMetricsRegistry, runService, startOpsServer } from '@nebula/service-kit';
import { notifierEnvSchema } from './config.ts';
import { createDb, migrateToLatest, pingDb } from '@nebula/db';

await runService({
  name: 'notifier',
  env: notifierEnvSchema,
  async start(env, log) {
    const db = createDb(env.DATABASE_URL);
    await migrateToLatest(db);
    const nc = await connect({ servers: env.NATS_URL, name: 'nebula-notifier', maxReconnectAttempts: -1 });
    const registry = createMetricsRegistry('notifier');
    const ops = await startOpsServer({
      port: env.METRICS_PORT,
      registry,
      health: async () => {
        const checks = { postgres: await pingDb(db), nats: !nc.isClosed() };
        return { ok: Object.values(checks).every(Boolean), checks };
      },
    });
    log.info({ port: ops.port }, 'notifier started');
    return {
      async stop() {
        await ops.close();
        await nc.drain();
        await db.destroy();
      },
    };
  },
});
