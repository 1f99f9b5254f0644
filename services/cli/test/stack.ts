/**
 * For the CLI's tests: a running API (in this process, on a free port) with a notifier and a few
 * workers (real worker code, the in-memory runtime), on a nats-server of its own and a throwaway
 * PostgreSQL database; and the CLI run as a child process against it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type ApiServer, createApiServer } from '@nebula/api';
import { busConnectOptions } from '@nebula/bus-auth';
import { createDb, createTestDatabase, type Database, type Kysely } from '@nebula/db';
import { createNotifier, type Notifier } from '@nebula/notifier';
import { createLogger } from '@nebula/service-kit';
import { startNatsServer } from '@nebula/test-kit';
import { createWorker, FakeRuntime, type Worker } from '@nebula/worker';

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
  /** A creds file (mode 600) for a worker in a process of its own (see workerCreds). */
  workerCredsFile(hostId: string, apps: string[]): Promise<string>;
  /** Starts a worker for `hostId` serving `apps`; `images` are what its registry can pull. */
  startWorker(hostId: string, apps: string[], images: string[]): Promise<Worker>;
  close(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url, 5);
  const nats = await startNatsServer();
  const conns: NatsConnection[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'nebula-cli-stack-'));
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
  /**
   * The credential an in-process worker connects with. The worker of this tree still makes its own
   * consumers (under its own names) and reads the newest revision with STREAM.MSG.GET, rights no
   * host credential has, so it runs as the admin user here. Once the worker joins and uses the
   * consumers the control plane makes, this becomes `nats.hostCreds(hostId, apps)` after
   * `ensureHostConsumers(jsm, hostId, apps, tuning)` (as services/api/test/host-enrolment.test.ts
   * does for a host).
   */
  const workerCreds = async (_hostId: string, _apps: string[]) => nats.creds.admin;
  const api = await createApiServer({
    db,
    databaseUrl: tdb.url,
    nc: await own('api'),
    keys: nats.keys,
    hosts: { servers: [nats.url], revocationRetryMs: 200 },
    log,
    auth: { enabled: true, basic: { user: ADMIN.user, password: ADMIN.password }, token: null },
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
  return {
    api,
    db,
    runtimes,
    nc: admin,
    natsUrl: nats.url,
    async workerCredsFile(hostId, apps) {
      const path = join(dir, `${hostId}.creds`);
      writeFileSync(path, await workerCreds(hostId, apps), { mode: 0o600 });
      return path;
    },
    async startWorker(hostId, apps, images) {
      const workerNc = await own(await workerCreds(hostId, apps));
      const rt = new FakeRuntime();
      for (const image of images) rt.registry.set(image, `sha256:${image.replace(/[^a-z0-9]/g, '')}`);
      runtimes.set(hostId, rt);
      const w = createWorker({ hostId, apps, nc: workerNc, runtime: rt, hostFacts: { cores: 2, memory_mb: 2048 }, log, options: FAST });
      workers.push(w);
      await w.start();
      return w;
    },
    async close() {
      for (const w of workers) await w.stop().catch(() => undefined);
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
