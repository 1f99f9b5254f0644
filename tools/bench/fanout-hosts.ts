/**
 * A child process holding a share of the simulated hosts of the fan-out benchmark: each host is the
 * real worker (`createWorker`) with its own key (sim-hosts.ts), joined through the API with the
 * parent's join token, its own NATS credential and connection (its own rights), its durable consumer
 * made by the API, and an in-memory `FakeRuntime`; it signs its results and heartbeats with its key.
 * Driven by the parent over IPC:
 *
 *   child ──ready (modules loaded)──▶ parent
 *   parent ──start {hosts, app, natsUrl, apiUrl, joinToken}──▶ join + connect + createWorker + start, `concurrency` at a time
 *          ◀──started {ms, failed}──────────
 *   parent ──stop──▶ stop every worker, close every connection ──▶ stopped ──▶ exit
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { busConnectOptions, hostInboxPrefix } from '@nebula/bus-auth';
import { RENEW_SUBJECT, renewSigningBytes } from '@nebula/contracts';
import { createLogger } from '@nebula/service-kit';
import { createWorker, FakeRuntime, type Worker, type WorkerOptions } from '@nebula/worker';
import { apiClient } from './services.ts';
import { joinSimHost, makeSimHost, simHostCreds } from './sim-hosts.ts';

export interface StartCommand {
  type: 'start';
  hosts: string[];
  app: string;
  image: string;
  natsUrl: string;
  apiUrl: string;
  /** A join token with a use for each host. */
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
const hosts: Array<{ w: Worker; nc: NatsConnection }> = [];

function send(m: HostsReply): void {
  process.send?.(m);
}

async function startOne(c: StartCommand, hostId: string): Promise<void> {
  const client = apiClient(c.apiUrl, '');
  const host = makeSimHost(hostId);
  const credential = await joinSimHost(client, c.joinToken, host, [c.app]);
  const creds = simHostCreds(host, credential);
  // What the worker's main does when a consumer is missing: renew, signed with the host's key.
  const provision = async (apps: readonly string[]) => {
    const req = { host_id: hostId, apps: [...apps], at: new Date().toISOString() };
    const res = await client.call('POST', '/api/v2/hosts/renew', { ...req, signature: host.sign(RENEW_SUBJECT, renewSigningBytes(req)) });
    if (res.status !== 200) throw new Error(`renew ${hostId}: ${res.status}`);
  };
  // A start refused under load (JetStream API timeouts with thousands of hosts starting) is tried again.
  for (let attempt = 1; ; attempt++) {
    const nc = await connect({
      ...busConnectOptions({ servers: [c.natsUrl], creds, name: hostId, inboxPrefix: hostInboxPrefix(hostId) }),
      maxReconnectAttempts: -1,
    });
    const rt = new FakeRuntime();
    rt.registry.set(c.image, 'sha256:0123456789abcdef');
    const deps = {
      hostId,
      apps: [c.app],
      nc,
      runtime: rt,
      hostFacts: { cores: 2, memory_mb: 2048 },
      log,
      options: c.options,
      // The host's identity: the control plane's key pinned at join, its own key to sign with.
      controlPlaneKey: credential.control_plane_key,
      hostKey: host.key,
      provision,
    };
    const w = createWorker(deps);
    try {
      await w.start();
      hosts.push({ w, nc });
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
    hosts.map(async ({ w, nc }) => {
      await w.stop().catch(() => undefined);
      await nc.close().catch(() => undefined);
    }),
  );
  send({ type: 'stopped' });
  process.exit(0);
}

process.on('message', (m: HostsCommand) => {
  const run = m.type === 'start' ? start(m) : stop();
  run.catch((err: unknown) => send({ type: 'error', error: String(err) }));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
