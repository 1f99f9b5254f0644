/**
 * A worker process whose clock is off: the real worker code (in-memory runtime) in a child process
 * of its own, with Date moved by SKEW_MS, so every `at` it sends is that far off. Env: NATS_URL,
 * NATS_CREDS (its creds file), HOST_ID, APP_NAME, SKEW_MS. Prints "running" once started;
 * stops on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { busConnectOptions } from '@nebula/bus-auth';
import { createLogger } from '@nebula/service-kit';
import { createWorker, FakeRuntime } from '@nebula/worker';

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

const nc = await connect(
  busConnectOptions({
    servers: [process.env.NATS_URL!],
    creds: readFileSync(process.env.NATS_CREDS!, 'utf8'),
    name: process.env.HOST_ID!,
  }),
);
const runtime = new FakeRuntime();
runtime.registry.set('img:1', 'sha256:img1');
const worker = createWorker({
  hostId: process.env.HOST_ID!,
  apps: [process.env.APP_NAME!],
  nc,
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
    pollMs: 5,
    healthCheckIntervalMs: 1_000,
  },
});
await worker.start();
process.stdout.write(`running; my clock says ${new Date().toISOString()}\n`);
process.once('SIGTERM', () => {
  void worker
    .stop()
    .then(() => nc.close())
    .then(() => process.exit(0));
});
