import { connect } from '@nats-io/transport-node';
import { busConnectOptions, busReconnectOptions, readCredsFile } from '@nebula/bus-auth';
import { createDb, dbOptionsFromEnv, migrateToLatest, pingDb } from '@nebula/db';
import { createMetricsRegistry, runService, startOpsServer } from '@nebula/service-kit';
import { notifierEnvSchema, optionsFromEnv } from './config.ts';
import { createNotifier } from './notifier.ts';

await runService({
  name: 'notifier',
  env: notifierEnvSchema,
  async start(env, log) {
    const { max, ...timeouts } = dbOptionsFromEnv(env);
    const db = createDb(env.DATABASE_URL, max, {
      ...timeouts,
      onIdleError: (err) => log.warn({ err }, 'database connection lost: reconnecting at the next query'),
    });
    await migrateToLatest(db);
    const nc = await connect({
      ...busConnectOptions({
        servers: env.NATS_URL,
        // Read at each (re)connection: a creds file replaced on disk is used from the next one on.
        creds: () => readCredsFile(env.NATS_CREDS),
        tlsCaFile: env.NATS_TLS_CA,
        name: 'nebula-notifier',
      }),
      ...busReconnectOptions(),
    });
    const registry = createMetricsRegistry('notifier');
    const notifier = createNotifier({ db, nc, log, registry, options: optionsFromEnv(env) });
    await notifier.start();
    const ops = await startOpsServer({
      port: env.METRICS_PORT,
      registry,
      health: async () => {
        const checks = { postgres: await pingDb(db), nats: !nc.isClosed(), consuming: notifier.state === 'running' };
        return { ok: Object.values(checks).every(Boolean), checks };
      },
    });
    log.info({ port: ops.port }, 'notifier started');
    return {
      async stop() {
        // Stop pulling and write what was delivered first; acks need NATS and PostgreSQL still open.
        await notifier.stop();
        await ops.close();
        await nc.drain();
        await db.destroy();
      },
    };
  },
});
