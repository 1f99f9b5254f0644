/**
 * Simulated hosts for the benchmarks: the real worker (`createWorker`) over the in-memory FakeRuntime,
 * spread over a few child processes (fanout-hosts.ts) so that a 2-core machine can hold thousands.
 * Each host joins through the API with one join token for all (its own key and NATS credential).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { waitFor } from '@nebula/test-kit';
import type { HostsCommand, HostsReply } from './fanout-hosts.ts';
import { type BenchStack, joinToken } from './services.ts';

export function processesFor(n: number): number {
  if (n <= 100) return 1;
  if (n <= 1000) return 2;
  return 4;
}

export class SimHostProcess {
  readonly proc: ChildProcess;
  private waiters: Array<(m: HostsReply) => void> = [];
  constructor() {
    this.proc = fork(join(import.meta.dirname, 'fanout-hosts.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: HostsReply) => {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f(m);
    });
  }
  next(): Promise<HostsReply> {
    return new Promise((resolve, reject) => {
      this.waiters.push(resolve);
      this.proc.once('exit', (code) => reject(new Error(`host process exited (${code})`)));
    });
  }
  send(m: HostsCommand): void {
    this.proc.send(m);
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.send({ type: 'stop' });
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(t);
  }
}

export interface SimHostsOptions {
  n: number;
  app: string;
  image: string;
  /** The simulated workers' options (e.g. a long heartbeat interval). */
  options: Extract<HostsCommand, { type: 'start' }>['options'];
}

/**
 * Forks the host processes into `children` (the caller stops them, also on failure), starts `n` hosts
 * serving `app` and waits until APPS has their consumers. Returns the time from the start command to
 * the last consumer.
 */
export async function startSimHosts(stack: BenchStack, children: SimHostProcess[], o: SimHostsOptions): Promise<{ startMs: number; hostIds: string[] }> {
  const k = processesFor(o.n);
  const hostIds = Array.from({ length: o.n }, (_, i) => `sim-${String(i + 1).padStart(5, '0')}`);
  for (let i = 0; i < k; i++) children.push(new SimHostProcess());
  await Promise.all(
    children.map(async (c) => {
      const m = await c.next();
      if (m.type !== 'ready') throw new Error(`host process: ${JSON.stringify(m)}`);
    }),
  );
  const nc = await connect(stack.nats.connectOptions('admin', { name: 'bench-hosts' }));
  try {
    const jsm = await jetstreamManager(nc);
    // Twice the hosts: a join the API finishes after its host gave up waiting (60 s) takes a use,
    // and the host's next try takes another.
    const token = await joinToken(stack, { uses: 2 * o.n, apps: [o.app] });
    const t0 = performance.now();
    const started = children.map((c) => c.next());
    for (const [i, c] of children.entries()) {
      c.send({
        type: 'start',
        hosts: hostIds.filter((_, j) => j % k === i),
        app: o.app,
        image: o.image,
        natsUrl: stack.nats.url,
        nebulaUrl: stack.client.url,
        joinToken: token,
        concurrency: 50,
        options: o.options,
      });
    }
    for (const r of await Promise.all(started)) {
      if (r.type !== 'started') throw new Error(`host process: ${JSON.stringify(r)}`);
      if (r.failed > 0) throw new Error(`${r.failed} hosts did not start: ${r.errors.join('; ')}`);
    }
    await waitFor(`${o.n} consumers on APPS`, async () => (await jsm.streams.info('APPS')).state.consumer_count >= o.n, 300_000, 50);
    return { startMs: performance.now() - t0, hostIds };
  } finally {
    await nc.close().catch(() => undefined);
  }
}
