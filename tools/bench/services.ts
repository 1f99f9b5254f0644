/**
 * The real services as separate processes (as they are deployed), on a throwaway PostgreSQL database
 * and a nats-server of their own:
 *
 *   startBenchStack() ─▶ nats-server (startNatsServer) + database (createTestDatabase)
 *                     ─▶ api process (services/api/src/main.ts)  ─▶ /health answers
 *                     ─▶ notifier process                         ─▶ /health answers
 *   startWorkerProcess(...) ─▶ worker process with DockerRuntime   ─▶ /health answers
 *   stop() ─▶ SIGTERM every process (SIGKILL after 10 s) ─▶ drop database ─▶ nats-server cleanup
 *
 * `BENCH_PROFILE=<dir>` starts every process with `--cpu-prof` writing into that folder;
 * `BENCH_LOG_DIR=<dir>` keeps each process's log there (`BENCH_LOG_LEVEL`, default warn).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase } from '@nebula/db';
import { freePort, startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface ServiceProcess {
  name: string;
  proc: ChildProcess;
  pid: number;
  port: number;
  /** The last lines it wrote (for error messages). */
  output(): string;
  stop(): Promise<void>;
}

function profileArgs(name: string): string[] {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return [];
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `${name}-${Date.now()}.cpuprofile`];
}

export async function startService(name: string, script: string, env: Record<string, string>, port: number): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, [...profileArgs(name), join(ROOT, script)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-4000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  if (process.env.BENCH_LOG_DIR) {
    mkdirSync(process.env.BENCH_LOG_DIR, { recursive: true });
    const file = createWriteStream(join(process.env.BENCH_LOG_DIR, `${name}-${proc.pid}.log`));
    proc.stdout?.pipe(file);
    proc.stderr?.pipe(file);
  }
  const svc: ServiceProcess = {
    name,
    proc,
    pid: proc.pid!,
    port,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill('SIGTERM');
      });
    },
  };
  try {
    await waitFor(
      `${name} /health`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`${name} exited (${proc.exitCode}): ${out}`);
        const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
        return res.ok;
      },
      60_000,
      50,
    );
  } catch (err) {
    await svc.stop();
    throw new Error(`${name} did not become healthy: ${out}`, { cause: err });
  }
  return svc;
}

/** A small REST client of the API (bearer token), returning status and parsed body. */
export interface ApiClient {
  url: string;
  token: string;
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

export function apiClient(url: string, token: string): ApiClient {
  return {
    url,
    token,
    async call<T>(method: string, path: string, body?: unknown) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
    },
  };
}

export interface BenchStack {
  nats: TestNatsServer;
  databaseUrl: string;
  api: ServiceProcess;
  notifier: ServiceProcess;
  client: ApiClient;
  /** Extra processes (workers) stopped with the stack. */
  extra: ServiceProcess[];
  stop(): Promise<void>;
}

export async function startBenchStack(opts: { notifierEnv?: Record<string, string>; apiEnv?: Record<string, string> } = {}): Promise<BenchStack> {
  const nats = await startNatsServer();
  const db = await createTestDatabase();
  const token = randomBytes(16).toString('hex');
  const started: ServiceProcess[] = [];
  const cleanup = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await db.drop().catch(() => undefined);
    await nats.cleanup().catch(() => undefined);
  };
  try {
    const apiPort = await freePort();
    const api = await startService(
      'api',
      'services/api/src/main.ts',
      { API_PORT: String(apiPort), API_HOST: '127.0.0.1', DATABASE_URL: db.url, NATS_URL: nats.url, AUTH_TOKEN: token, ...opts.apiEnv },
      apiPort,
    );
    started.push(api);
    const metricsPort = await freePort();
    const notifier = await startService(
      'notifier',
      'services/notifier/src/main.ts',
      { METRICS_PORT: String(metricsPort), DATABASE_URL: db.url, NATS_URL: nats.url, ...opts.notifierEnv },
      metricsPort,
    );
    started.push(notifier);
    const stack: BenchStack = {
      nats,
      databaseUrl: db.url,
      api,
      notifier,
      client: apiClient(`http://127.0.0.1:${apiPort}`, token),
      extra: started,
      stop: cleanup,
    };
    return stack;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** A real worker process (DockerRuntime against the machine's engine) serving `apps`. */
export async function startWorkerProcess(stack: BenchStack, hostId: string, apps: string[], env: Record<string, string> = {}): Promise<ServiceProcess> {
  const port = await freePort();
  const w = await startService(
    `worker-${hostId}`,
    'services/worker/src/main.ts',
    { APP_NAME: apps.join(','), HOST_ID: hostId, NATS_URL: stack.nats.url, METRICS_PORT: String(port), ...env },
    port,
  );
  stack.extra.push(w);
  return w;
}

/** Waits until the notifier has written heartbeats of `count` online hosts (so rollouts expect them). */
export async function waitHostsOnline(stack: BenchStack, count: number, timeoutMs = 120_000): Promise<void> {
  const { countHosts, createDb } = await import('@nebula/db');
  const db = createDb(stack.databaseUrl, 1);
  try {
    await waitFor(`${count} hosts online`, async () => (await countHosts(db, { offlineAfterMissed: 3 })).online >= count, timeoutMs, 100);
  } finally {
    await db.destroy();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const suffix = () => randomBytes(3).toString('hex');
