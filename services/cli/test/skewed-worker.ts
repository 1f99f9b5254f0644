/**
 * A worker process whose clock is off: the real worker code (in-memory runtime) in a child process
 * of its own, with Date moved by SKEW_MS, so every `at` it sends is that far off. Env: NATS_URL,
 * NEBULA_CREDENTIALS_FILE (a joined host's) and NEBULA_URL, HOST_ID, APP_NAME, SKEW_MS. Prints "running" once started;
 * stops on SIGTERM.
 */
import { createLogger } from '@nebula/service-kit';
import { createWorker, FakeRuntime, joinBus } from '@nebula/worker';

const skew = Number(process.env.SKEW_MS ?? 0);
const Real = Date;
class Skewed extends Real {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(Real.now() + skew);
    else super(...(args as [string]));
  }
  static override now() {
    return Real.now() + skew;
  }
}
globalThis.Date = Skewed as DateConstructor;

const bus = await joinBus({
  hostId: process.env.HOST_ID!,
  apps: [process.env.APP_NAME!],
  credentialsFile: process.env.NEBULA_CREDENTIALS_FILE!,
  nebulaUrl: process.env.NEBULA_URL!,
  consumer: { ack_wait_seconds: 5 },
  timeoutMs: 5000,
  log: createLogger('skewed-worker', 'silent'),
  servers: [process.env.NATS_URL!],
});
const runtime = new FakeRuntime();
runtime.registry.set('img:1', 'sha256:img1');
const worker = createWorker({
  hostId: process.env.HOST_ID!,
  apps: [process.env.APP_NAME!],
  ...bus.host,
  runtime,
  hostFacts: { cores: 1, memory_mb: 512 },
  log: createLogger('skewed-worker', 'silent'),
  options: {
    heartbeatIntervalMs: 500,
    ackWaitMs: 5_000,
    fetchExpiresMs: 1_000,
    retryBaseMs: 100,
    retryMaxMs: 400,
    rollSettleMs: 0,
    settleMs: 100,
    pollMs: 5,
    healthCheckIntervalMs: 1_000,
  },
});
await worker.start();
process.stdout.write(`running; my clock says ${new Date().toISOString()}\n`);
process.once('SIGTERM', () => {
  void worker
    .stop()
    .then(() => bus.close())
    .then(() => process.exit(0));
});
