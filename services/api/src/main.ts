import { createServer } from 'node:http';
import { connect } from '@nats-io/transport-node';
import { createMetricsRegistry, handleOpsRequest, runService } from '@nebula/service-kit';
import { apiEnvSchema } from './config.ts';
import { createDb, migrateToLatest, pingDb } from '@nebula/db';

await runService({
  name: 'api',
  env: apiEnvSchema,
  async start(env, log) {
    const db = createDb(env.DATABASE_URL);
    await migrateToLatest(db);
    const nc = await connect({ servers: env.NATS_URL, name: 'nebula-api', maxReconnectAttempts: -1 });
    const registry = createMetricsRegistry('api');
    const health = async () => {
      const checks = { postgres: await pingDb(db), nats: !nc.isClosed() };
      return { ok: Object.values(checks).every(Boolean), checks };
    };
    const server = createServer((req, res) => {
      if (handleOpsRequest(req, res, { registry, health })) return;
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(env.API_PORT, env.API_HOST, resolve);
    });
    log.info({ port: env.API_PORT }, `api listening on http://${env.API_HOST}:${env.API_PORT}`);
    return {
      async stop() {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await nc.drain();
        await db.destroy();
      },
    };
  },
});
