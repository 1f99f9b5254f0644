/**
 * A child process holding a share of the simulated hosts of the fan-out benchmark: each host is the
 * real worker (`createWorker`) with its own key (sim-hosts.ts), joined through the API with the
 * parent's join token, its own NATS credential and connection (its own rights), its durable consumer
 * made by the API, and an in-memory `FakeRuntime`; it signs its results and heartbeats with its key.
 * Driven by the parent over IPC:
 *
 *   child ──ready (modules loaded)──▶ parent
 *   parent ──start {hosts, app, natsUrl, nebulaUrl, joinToken}──▶ join (each host its own key and
 *          credential, through the API, as a real host does) + connect + createWorker + start,
 *          `concurrency` at a time
 *          ◀──started {ms, failed}──────────
 *   parent ──stop──▶ stop every worker, close every connection ──▶ stopped ──▶ exit
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createLogger } from '@nebula/service-kit';
import { createWorker, establishIdentity, FakeRuntime, type HostIdentity, hostConnectOptions, type Worker, type WorkerOptions } from '@nebula/worker';

export interface StartCommand {
  type: 'start';
  hosts: string[];
  app: string;
  image: string;
  natsUrl: string;
  /** The API the hosts join (a token of `hosts.length` uses or more). */
  nebulaUrl: string;
  joinToken: string;
  concurrency: number;
  options: Partial<WorkerOptions>;
}
export type HostsCommand = StartCommand | { type: 'stop' };
export type HostsReply =
  | { type: 'ready' }
  | { type: 'started'; ms: number; failed: number; errors: string[] }
  | { type: 'stopped' }
  | { type: 'error'; error: string };

const log = createLogger('bench-host', process.env.BENCH_HOST_LOG ?? 'error');
const hosts: Array<{ w: Worker; nc: NatsConnection; identity: HostIdentity }> = [];
/** The simulated hosts' credentials files (one folder per child process, removed at stop). */
const credentialsDir = mkdtempSync(join(tmpdir(), 'nebula-bench-hosts-'));

function send(m: HostsReply): void {
  process.send?.(m);
}

async function startOne(c: StartCommand, hostId: string): Promise<void> {
  // Joined once (a token use is spent); a start refused under load (JetStream API timeouts with
  // thousands of hosts starting) is tried again with the same identity.
  const identity = await establishIdentity({
    hostId,
    apps: [c.app],
    credentialsFile: join(credentialsDir, `${hostId}.json`),
    nebulaUrl: c.nebulaUrl,
    joinToken: c.joinToken,
    consumer: { ...(c.options.ackWaitMs !== undefined ? { ack_wait_seconds: c.options.ackWaitMs / 1000 } : {}) },
    timeoutMs: 60_000,
    // A real worker that runs out of join tries exits and its unit starts it again
    // (Restart=on-failure): a simulated one keeps trying instead, jittered as the worker's own.
    joinAttempts: 30,
    log,
  });
  for (let attempt = 1; ; attempt++) {
    const nc = await connect({ ...hostConnectOptions(identity, { servers: [c.natsUrl] }), maxReconnectAttempts: -1 });
    const rt = new FakeRuntime();
    rt.registry.set(c.image, 'sha256:0123456789abcdef');
    const w = createWorker({
      hostId,
      apps: [c.app],
      nc,
      controlPlaneKey: identity.controlPlaneKey,
      hostKey: identity.hostKey,
      provision: () => identity.renew(),
      runtime: rt,
      hostFacts: { cores: 2, memory_mb: 2048 },
      log,
      options: c.options,
    });
    try {
      await w.start();
      hosts.push({ w, nc, identity });
      return;
    } catch (err) {
      await w.stop().catch(() => undefined);
      await nc.close().catch(() => undefined);
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

async function start(c: StartCommand): Promise<void> {
  const t0 = performance.now();
  const queue = [...c.hosts];
  const errors: string[] = [];
  await Promise.all(
    Array.from({ length: Math.min(c.concurrency, queue.length) }, async () => {
      for (let h = queue.shift(); h !== undefined; h = queue.shift()) {
        await startOne(c, h).catch((err: unknown) => errors.push(`${h}: ${String(err)}`));
      }
    }),
  );
  send({ type: 'started', ms: performance.now() - t0, failed: errors.length, errors: errors.slice(0, 5) });
}

async function stop(): Promise<void> {
  await Promise.all(
    hosts.map(async ({ w, nc, identity }) => {
      await w.stop().catch(() => undefined);
      identity.stop();
      await nc.close().catch(() => undefined);
    }),
  );
  rmSync(credentialsDir, { recursive: true, force: true });
  send({ type: 'stopped' });
  process.exit(0);
}

process.on('message', (m: HostsCommand) => {
  const run = m.type === 'start' ? start(m) : stop();
  run.catch((err: unknown) => send({ type: 'error', error: String(err) }));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
