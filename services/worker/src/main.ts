import { connect } from '@nats-io/transport-node';
import { createMetricsRegistry, runService, startOpsServer } from '@nebula/service-kit';
import { workerEnvSchema } from './config.ts';
import { createDockerClient, pingDocker } from './runtime/docker-client.ts';

await runService({
  name: 'worker',
  env: workerEnvSchema,
  async start(env, log) {
    const docker = createDockerClient(env.DOCKER_HOST);
    if (!(await pingDocker(docker))) throw new Error(`docker engine at ${env.DOCKER_HOST} does not answer`);
    const nc = await connect({ servers: env.NATS_URL, name: `nebula-worker-${env.HOST_ID}`, maxReconnectAttempts: -1 });
    const registry = createMetricsRegistry('worker');
    const ops = await startOpsServer({
      port: env.METRICS_PORT,
      registry,
      health: async () => {
        const checks = { docker: await pingDocker(docker), nats: !nc.isClosed() };
        return { ok: Object.values(checks).every(Boolean), checks };
      },
    });
    log.info({ host: env.HOST_ID, apps: env.APP_NAME, port: ops.port }, 'worker started');
    return {
      async stop() {
        await ops.close();
        await nc.drain();
      },
    };
  },
});
