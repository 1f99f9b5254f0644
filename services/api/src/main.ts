import { connect } from '@nats-io/transport-node';
import { createDb, dbOptionsFromEnv } from '@nebula/db';
import { runService } from '@nebula/service-kit';
import { authSettings, describeAuth } from './auth.ts';
import { apiEnvSchema } from './config.ts';
import { createApiServer } from './http/server.ts';

await runService({
  name: 'api',
  env: apiEnvSchema,
  async start(env, log) {
    // Refuses to start (naming the variables) when auth is on but no credential is set.
    const auth = authSettings(env);
    log.info({ auth: describeAuth(auth) }, `auth: ${describeAuth(auth)}`);
    const { max, ...timeouts } = dbOptionsFromEnv(env);
    const db = createDb(env.DATABASE_URL, max, {
      ...timeouts,
      onIdleError: (err) => log.warn({ err }, 'database connection lost: reconnecting at the next query'),
    });
    // waitOnFirstConnect: a NATS that is not up yet is waited for, not a failed start.
    const nc = await connect({ servers: env.NATS_URL, name: 'nebula-api', maxReconnectAttempts: -1, waitOnFirstConnect: true });
    const api = await createApiServer({
      db,
      databaseUrl: env.DATABASE_URL,
      nc,
      log,
      auth,
      port: env.API_PORT,
      host: env.API_HOST,
      maxBodyBytes: env.API_MAX_BODY_BYTES,
      offlineAfterMissedHeartbeats: env.HOST_OFFLINE_AFTER_MISSED_HEARTBEATS,
      relay: { streamCheckMs: env.APPS_STREAM_CHECK_SECONDS * 1000 },
      maxBatchSize: env.API_MAX_BATCH_SIZE,
      retention: { retentionDays: env.RETENTION_DAYS, intervalMs: env.RETENTION_INTERVAL_MS, batchSize: env.RETENTION_BATCH_SIZE },
      watch: { maxPerIdentity: env.API_WATCH_MAX_PER_IDENTITY, maxDurationMs: env.API_WATCH_MAX_DURATION_MS, pingMs: env.API_WATCH_PING_MS },
    });
    log.info({ port: api.port }, `api listening on http://${env.API_HOST}:${api.port}`);
    return {
      async stop() {
        await api.close();
        await nc.drain();
        await db.destroy();
      },
    };
  },
});
