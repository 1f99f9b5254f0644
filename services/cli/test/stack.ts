/**
 * For the CLI's tests: a running API (in this process, on a free port) with a notifier and a few
 * workers (real worker code, the in-memory runtime), on a nats-server of its own and a throwaway
 * PostgreSQL database; and the CLI run as a child process against it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as join_ } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type ApiServer, createApiServer } from '@nebula/api';
import { busConnectOptions } from '@nebula/bus-auth';
import { createDb, createTestDatabase, type Database, type Kysely } from '@nebula/db';
import { createNotifier, type Notifier } from '@nebula/notifier';
import { createLogger } from '@nebula/service-kit';
import { startNatsServer } from '@nebula/test-kit';
import { createWorker, FakeRuntime, joinBus, type Worker } from '@nebula/worker';

export const log = createLogger('cli-test', process.env.TEST_LOG_LEVEL ?? 'silent');
export const ADMIN = { user: 'admin', password: `pw-${randomBytes(6).toString('hex')}` };
export const suffix = () => randomBytes(3).toString('hex');

/** Missed heartbeats (of 0.5 s) before a host is offline, for the API and the notifier alike. */
const OFFLINE_AFTER = 6;

const FAST = {
  heartbeatIntervalMs: 500,
  ackWaitMs: 5_000,
  fetchExpiresMs: 1_000,
  retryBaseMs: 100,
  retryMaxMs: 400,
  rollSettleMs: 0,
  settleMs: 100,
  pollMs: 5,
  healthCheckIntervalMs: 1_000,
  stopTimeoutSeconds: 0,
};

export interface Stack {
  api: ApiServer;
  db: Kysely<Database>;
  runtimes: Map<string, FakeRuntime>;
  /** An admin connection (every right): for tests that publish as any worker would (heartbeats). */
  nc: NatsConnection;
  /** The nats-server, for workers in processes of their own. */
  natsUrl: string;
  apiUrl: string;
  /** Joins a host (a token, its own key) and connects it: for tests that publish as that host. */
  joinHost(hostId: string, apps: string[]): Promise<Awaited<ReturnType<typeof joinBus>>>;
  /** A joined host's credentials file (NEBULA_CREDENTIALS_FILE), for a worker in a process of its own. */
  workerCredentialsFile(hostId: string, apps: string[]): Promise<string>;
  /** Starts a worker for `hostId` serving `apps`; `images` are what its registry can pull. */
  startWorker(hostId: string, apps: string[], images: string[]): Promise<Worker>;
  close(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url, 5);
  const nats = await startNatsServer();
  const conns: NatsConnection[] = [];
  const dir = mkdtempSync(join_(tmpdir(), 'nebula-cli-stack-'));
  const own = async (who: 'api' | 'notifier' | 'admin' | string) => {
    const opts = { maxReconnectAttempts: -1, reconnectTimeWait: 100 };
    const nc = await connect(
      who === 'api' || who === 'notifier' || who === 'admin'
        ? nats.connectOptions(who, opts)
        : { ...busConnectOptions({ servers: [nats.url], creds: who, name: 'worker' }), ...opts },
    );
    conns.push(nc);
    return nc;
  };
  const admin = await own('admin');
  const api = await createApiServer({
    db,
    databaseUrl: tdb.url,
    nc: await own('api'),
    keys: nats.keys,
    hosts: { servers: [nats.url], revocationRetryMs: 200 },
    log,
    auth: { basic: { user: ADMIN.user, password: ADMIN.password }, token: null },
    relay: { lockPollMs: 100, pollMs: 200, maxBackoffMs: 300 },
    watchPollMs: 200,
    // Heartbeats every 0.5 s: offline after 3 s without one. With the default 3 (1.5 s), a loaded
    // 2-core machine, where this one process also runs the API, the notifier and three workers,
    // now and then let a host look offline for a moment and a rollout expect one host fewer.
    offlineAfterMissedHeartbeats: OFFLINE_AFTER,
  });
  const notifier: Notifier = createNotifier({ db, nc: await own('notifier'), log, options: { flushIntervalMs: 50, offlineAfterMissed: OFFLINE_AFTER } });
  await notifier.start();
  const workers: Worker[] = [];
  const runtimes = new Map<string, FakeRuntime>();
  const buses: Array<{ close(): Promise<void> }> = [];
  const tokenFor = async (apps: string[]) => {
    const res = await fetch(`${api.url}/api/v2/hosts/join_tokens`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ uses: 1, apps }),
      signal: AbortSignal.timeout(5000),
    });
    if (res.status !== 200) throw new Error(`join token: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { token: string }).token;
  };
  // Each worker joins as a real host does (a token, its own key, the API's join route) and keeps
  // its credential in a file of the stack's folder.
  const join = async (hostId: string, apps: string[]) => {
    const bus = await joinBus({
      hostId,
      apps,
      credentialsFile: join_(dir, `${hostId}.credentials.json`),
      nebulaUrl: api.url,
      joinToken: await tokenFor(apps),
      consumer: { ack_wait_seconds: FAST.ackWaitMs / 1000 },
      timeoutMs: 5000,
      log,
      servers: [nats.url],
      connect: { reconnectTimeWait: 100 },
    });
    buses.push(bus);
    return bus;
  };
  return {
    api,
    db,
    runtimes,
    nc: admin,
    natsUrl: nats.url,
    apiUrl: api.url,
    joinHost: join,
    async workerCredentialsFile(hostId, apps) {
      const bus = await join(hostId, apps);
      await bus.close();
      return join_(dir, `${hostId}.credentials.json`);
    },
    async startWorker(hostId, apps, images) {
      const bus = await join(hostId, apps);
      const rt = new FakeRuntime();
      for (const image of images) rt.registry.set(image, `sha256:${image.replace(/[^a-z0-9]/g, '')}`);
      runtimes.set(hostId, rt);
      const w = createWorker({ hostId, apps, ...bus.host, runtime: rt, hostFacts: { cores: 2, memory_mb: 2048 }, log, options: FAST });
      workers.push(w);
      await w.start();
      return w;
    },
    async close() {
      for (const w of workers) await w.stop().catch(() => undefined);
      for (const b of buses) await b.close();
      await notifier.stop().catch(() => undefined);
      await api.close().catch(() => undefined);
      for (const c of conns) await c.close().catch(() => undefined);
      await db.destroy();
      await nats.cleanup();
      await tdb.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
export const BIN = new URL('../bin/nebula', import.meta.url).pathname;

/**
 * Runs the CLI as a child process (asynchronously: the API it talks to runs in this process).
 * `env` replaces the NEBULA_* variables entirely, so nothing of the caller's leaks in.
 */
export function nebula(args: string[], env: Record<string, string> = {}, opts: { stdin?: string; bin?: boolean } = {}): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NEBULA_')));
  const [cmd, argv] = opts.bin ? [BIN, args] : [process.execPath, [MAIN, ...args]];
  const child = spawn(cmd, argv, { env: { ...base, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.stdin ?? '');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nebula ${args.join(' ')}: no exit within 30 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // Give the pipes a moment to deliver what was written just before the exit.
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}
