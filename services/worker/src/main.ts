import { availableParallelism, hostname, totalmem } from 'node:os';
import { hostIdFromHostname } from '@nebula/contracts';
import { ConfigError, createMetricsRegistry, runService, startOpsServer } from '@nebula/service-kit';
import { hostPolicyFromEnv, resolveHostId, workerEnvSchema } from './config.ts';
import { joinBus } from './identity/join-bus.ts';
import { createDockerClient, pingDocker } from './runtime/docker-client.ts';
import { DockerRuntime } from './runtime/docker-runtime.ts';
import { registryAuthResolver } from './runtime/registry-auth.ts';
import { createWorker } from './worker.ts';

await runService({
  name: 'worker',
  env: workerEnvSchema,
  async start(env, log) {
    const hostId = resolveHostId(env);
    const docker = createDockerClient(env.DOCKER_HOST);
    if (!(await pingDocker(docker, env.ENGINE_CALL_TIMEOUT_SECONDS * 1000))) throw new Error(`docker engine at ${env.DOCKER_HOST} does not answer`);
    let bus: Awaited<ReturnType<typeof joinBus>>;
    try {
      bus = await joinBus({
        hostId,
        apps: env.APP_NAME,
        deviceGroup: env.DEVICE_GROUP,
        credentialsFile: env.NEBULA_CREDENTIALS_FILE,
        nebulaUrl: env.NEBULA_URL,
        joinToken: env.NEBULA_JOIN_TOKEN,
        // The control plane makes the consumers with the settings this host asks for.
        consumer: { ack_wait_seconds: env.ACK_WAIT_SECONDS, inactive_threshold_hours: env.CONSUMER_INACTIVE_THRESHOLD_HOURS },
        timeoutMs: env.NEBULA_API_TIMEOUT_SECONDS * 1000,
        log,
        servers: env.NATS_URL,
        tlsCaFile: env.NATS_TLS_CA,
      });
    } catch (err) {
      // Not joined and nothing to join with: a configuration error, exit 2 like a wrong variable.
      if (err instanceof ConfigError) {
        log.fatal({ variables: err.variables }, err.message);
        process.exit(2);
      }
      throw err;
    }
    const { nc, identity } = bus;
    const runtime = new DockerRuntime(docker, {
      auth: registryAuthResolver({ user: env.REGISTRY_AUTH_USER, password: env.REGISTRY_AUTH_PASSWORD, host: env.REGISTRY_HOST }),
      callTimeoutMs: env.ENGINE_CALL_TIMEOUT_SECONDS * 1000,
      pullStallMs: env.PULL_STALL_TIMEOUT_SECONDS * 1000,
    });
    if (env.HOST_ID === undefined) {
      // Before the machine id, the default was the hostname: containers made under it are not this
      // host id's any more (they keep running, unmanaged, and may hold the ports the apps need).
      const before = hostIdFromHostname(hostname());
      const stale = before === hostId ? [] : await runtime.listContainers(before).catch(() => []);
      if (stale.length > 0) {
        log.warn(
          { hostId, previousDefault: before, containers: stale.map((c) => c.name).sort() },
          `containers of host id ${before} (the former default, the hostname) are on this engine: set HOST_ID=${before} to keep managing them`,
        );
      }
    }
    const registry = createMetricsRegistry('worker');
    const worker = createWorker({
      hostId,
      apps: env.APP_NAME,
      deviceGroup: env.DEVICE_GROUP,
      // A consumer missing, or the group's apps changed: a renewal makes the control plane create
      // the consumers of the current app set (APP_NAME and the group's) and grant their rights.
      ...bus.host,
      registry,
      runtime,
      hostFacts: { cores: availableParallelism(), memory_mb: Math.floor(totalmem() / 1024 / 1024) },
      log,
      options: {
        heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_SECONDS * 1000,
        reportIntervalMs: env.WORKER_REPORT_INTERVAL_SECONDS * 1000,
        stopTimeoutSeconds: env.STOP_TIMEOUT_SECONDS,
        maxRestartWaitSeconds: env.MAX_RESTART_WAIT_IN_SECONDS,
        ackWaitMs: env.ACK_WAIT_SECONDS * 1000,
        healthCheckIntervalMs: env.HEALTH_CHECK_INTERVAL_SECONDS * 1000,
        rollSettleMs: env.ROLL_SETTLE_SECONDS * 1000,
        settleMs: env.WORKER_SETTLE_SECONDS * 1000,
        convergeTimeoutMs: env.CONVERGE_TIMEOUT_SECONDS * 1000,
        stuckAfterMs: env.STUCK_AFTER_SECONDS * 1000,
        reconcileIntervalMs: env.RECONCILE_INTERVAL_SECONDS * 1000,
        reconcileMaxBackoffMs: env.RECONCILE_MAX_BACKOFF_SECONDS * 1000,
        removeUnserved: env.REMOVE_UNSERVED,
        maxContainersPerApp: env.MAX_CONTAINERS_PER_APP,
        maxParallelStarts: env.MAX_PARALLEL_STARTS,
        unhealthyRestartMaxBackoffMs: env.UNHEALTHY_RESTART_MAX_BACKOFF_SECONDS * 1000,
        removeOldImages: env.REMOVE_OLD_IMAGES,
        hostPolicy: hostPolicyFromEnv(env),
      },
    });
    // /health answers from the start: 503 with `worker: false` while it waits for the streams (which
    // the API and the notifier create) and adopts its containers, 200 once it runs.
    const ops = await startOpsServer({
      port: env.METRICS_PORT,
      registry,
      health: async () => {
        const checks = { docker: await pingDocker(docker, env.ENGINE_CALL_TIMEOUT_SECONDS * 1000), nats: !nc.isClosed(), worker: worker.state === 'running' };
        return { ok: Object.values(checks).every(Boolean), checks, state: worker.state };
      },
    });
    try {
      await worker.start();
    } catch (err) {
      identity.stop();
      await ops.close();
      throw err;
    }
    log.info(
      { host: hostId, apps: worker.served(), ...(env.DEVICE_GROUP !== undefined ? { device_group: env.DEVICE_GROUP } : {}), port: ops.port },
      'worker started',
    );
    return {
      async stop() {
        await worker.stop();
        identity.stop();
        await ops.close();
        await nc.drain();
      },
    };
  },
});
