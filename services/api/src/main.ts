import { connect } from '@nats-io/transport-node';
import { busConnectOptions, busReconnectOptions, InsecureBusError, plaintextRemoteServers } from '@nebula/bus-auth';
import { createDb, dbOptionsFromEnv } from '@nebula/db';
import { runService } from '@nebula/service-kit';
import { authSettings, describeAuth } from './auth.ts';
import { readConfigFile, readControlPlaneKeys } from './bus-keys.ts';
import { apiEnvSchema } from './config.ts';
import { createApiServer } from './http/server.ts';
import { apiTlsFromEnv } from './tls-config.ts';

await runService({
  name: 'api',
  env: apiEnvSchema,
  async start(env, log) {
    // Refuses to start (naming the variables) without a local admin, or with AUTH_ENABLED=false.
    const auth = authSettings(env);
    log.info({ auth: describeAuth(auth) }, `auth: ${describeAuth(auth)}`);
    // The bus identity: read once, checked now (a config error names the variable; no value is logged).
    const keys = readControlPlaneKeys(env.BUS_KEYS_FILE, 'BUS_KEYS_FILE');
    const creds = readConfigFile(env.NATS_CREDS, 'NATS_CREDS');
    // HTTPS when API_TLS_CERT and API_TLS_KEY are set (both or neither; checked to be a pair now).
    const tls = apiTlsFromEnv(env);
    const tlsCa = env.NATS_TLS_CA === undefined ? undefined : readConfigFile(env.NATS_TLS_CA, 'NATS_TLS_CA');
    const servers = env.NATS_URL;
    // Refuses plaintext to a server outside loopback (InsecureBusError names NATS_URL).
    const natsOptions = busConnectOptions({ servers, creds, tlsCaFile: env.NATS_TLS_CA, name: 'nebula-api' });
    // The regions' servers get the revocation list over a system user connection: TLS as well.
    const plainRegions = plaintextRemoteServers(
      env.NATS_REGIONS.flatMap((r) => r.servers),
      env.NATS_TLS_CA !== undefined,
    );
    if (plainRegions.length > 0) {
      throw new InsecureBusError(`NATS_REGIONS ${plainRegions.join(', ')} is outside loopback without TLS: use tls:// (and NATS_TLS_CA for a private CA)`);
    }
    const { max, ...timeouts } = dbOptionsFromEnv(env);
    const db = createDb(env.DATABASE_URL, max, {
      ...timeouts,
      onIdleError: (err) => log.warn({ err }, 'database connection lost: reconnecting at the next query'),
    });
    // waitOnFirstConnect: a NATS that is not up yet is waited for, not a failed start.
    const nc = await connect({ ...natsOptions, ...busReconnectOptions(), waitOnFirstConnect: true });
    const api = await createApiServer({
      db,
      databaseUrl: env.DATABASE_URL,
      nc,
      log,
      auth,
      logins: { maxFailuresPerSource: env.API_LOGIN_MAX_FAILURES_PER_MINUTE, maxFailuresPerUser: env.API_LOGIN_MAX_FAILURES_PER_USER_PER_MINUTE },
      tls,
      allowedOrigins: env.API_ALLOWED_ORIGINS,
      port: env.API_PORT,
      host: env.API_HOST,
      maxBodyBytes: env.API_MAX_BODY_BYTES,
      offlineAfterMissedHeartbeats: env.HOST_OFFLINE_AFTER_MISSED_HEARTBEATS,
      relay: { streamCheckMs: env.APPS_STREAM_CHECK_SECONDS * 1000 },
      streamReplicas: env.NATS_STREAM_REPLICAS,
      maxBatchSize: env.API_MAX_BATCH_SIZE,
      retention: {
        retentionDays: env.RETENTION_DAYS,
        intervalMs: env.RETENTION_INTERVAL_MS,
        batchSize: env.RETENTION_BATCH_SIZE,
        reportRetentionDays: env.REPORT_RETENTION_DAYS,
      },
      watch: { maxPerIdentity: env.API_WATCH_MAX_PER_IDENTITY, maxDurationMs: env.API_WATCH_MAX_DURATION_MS, pingMs: env.API_WATCH_PING_MS },
      keys,
      hosts: {
        servers,
        tlsCa,
        credentialTtlMs: env.HOST_CREDENTIAL_TTL_HOURS * 3_600_000,
        publicUrl: env.API_PUBLIC_URL,
        publicNatsServers: env.NATS_PUBLIC_URL,
        regions: env.NATS_REGIONS,
        workerImage: env.WORKER_IMAGE,
        maxFailuresPerMinute: env.HOST_JOIN_MAX_FAILURES_PER_MINUTE,
      },
    });
    const scheme = tls ? 'https' : 'http';
    log.info({ port: api.port, scheme }, `api listening on ${scheme}://${env.API_HOST}:${api.port}`);
    return {
      async stop() {
        await api.close();
        await nc.drain();
        await db.destroy();
      },
    };
  },
});
