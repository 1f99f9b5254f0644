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
 * The bus runs secured, as users run it: the nats-server in operator mode with keys of its own; the
 * API and the notifier connect with their creds files (`NATS_CREDS`), the API holds the control
 * plane's keys (`BUS_KEYS_FILE`, a JSON file of ControlPlaneKeys) to sign app messages and issue
 * host credentials; hosts join through the API (`joinToken` below) or, for simulated hosts, are
 * registered as the API registers them (see sim-hosts.ts). The bench's own observers connect as the
 * server's admin user. Those files live in a private folder removed with the stack.
 *
 * `BENCH_PROFILE=<dir>` starts every process with `--cpu-prof` writing into that folder;
 * `BENCH_LOG_DIR=<dir>` keeps each process's log there (`BENCH_LOG_LEVEL`, default warn).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

export async function startService(name: string, script: string, env: Record<string, string>, port: number, nodeArgs: string[] = []): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, [...nodeArgs, ...profileArgs(name), join(ROOT, script)], {
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
        // Every change is JSON, with a body or not (the API refuses others).
        headers: { authorization: `Bearer ${token}`, ...(method === 'GET' ? {} : { 'content-type': 'application/json' }) },
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
  /** Paths of the services' creds files and of the control plane's keys (mode 600). */
  files: { apiCreds: string; notifierCreds: string; busKeys: string };
  /** The API process; null for a stack started with `{ api: false }`. */
  api: ServiceProcess | null;
  notifier: ServiceProcess;
  client: ApiClient;
  /** Extra processes (workers) stopped with the stack. */
  extra: ServiceProcess[];
  stop(): Promise<void>;
}

/** The API process of a stack started with it (every part but the notifier's). */
export function requireApi(stack: BenchStack): ServiceProcess {
  if (!stack.api) throw new Error('this part needs the API: startBenchStack() without { api: false }');
  return stack.api;
}

/** The environment the API needs for the secured bus (read from services/api's README: NATS_CREDS, BUS_KEYS_FILE). */
export function apiBusEnv(files: BenchStack['files']): Record<string, string> {
  return { NATS_CREDS: files.apiCreds, BUS_KEYS_FILE: files.busKeys };
}

export async function startBenchStack(
  opts: { notifierEnv?: Record<string, string>; apiEnv?: Record<string, string>; api?: boolean } = {},
): Promise<BenchStack> {
  const nats = await startNatsServer();
  const db = await createTestDatabase();
  const token = randomBytes(16).toString('hex');
  const started: ServiceProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'nebula-bench-bus-'));
  const files = { apiCreds: join(dir, 'api.creds'), notifierCreds: join(dir, 'notifier.creds'), busKeys: join(dir, 'bus-keys.json') };
  writeFileSync(files.apiCreds, nats.creds.api, { mode: 0o600 });
  writeFileSync(files.notifierCreds, nats.creds.notifier, { mode: 0o600 });
  writeFileSync(files.busKeys, JSON.stringify(nats.keys), { mode: 0o600 });
  const cleanup = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await db.drop().catch(() => undefined);
    await nats.cleanup().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const apiPort = await freePort();
    let api: ServiceProcess | null = null;
    if (opts.api !== false) {
      api = await startService(
        'api',
        'services/api/src/main.ts',
        {
          API_PORT: String(apiPort),
          API_HOST: '127.0.0.1',
          DATABASE_URL: db.url,
          NATS_URL: nats.url,
          AUTH_TOKEN: token,
          ...apiBusEnv(files),
          ...opts.apiEnv,
        },
        apiPort,
      );
      started.push(api);
    }
    const metricsPort = await freePort();
    const notifier = await startService(
      'notifier',
      'services/notifier/src/main.ts',
      { METRICS_PORT: String(metricsPort), DATABASE_URL: db.url, NATS_URL: nats.url, NATS_CREDS: files.notifierCreds, ...opts.notifierEnv },
      metricsPort,
    );
    started.push(notifier);
    const stack: BenchStack = {
      nats,
      databaseUrl: db.url,
      files,
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

/**
 * A join token from the API (`POST /api/v2/hosts/join_tokens`, see @nebula/contracts host-join.ts):
 * the way every host of the benchmarks gets its identity.
 */
export async function joinToken(stack: BenchStack, opts: { uses?: number; apps?: string[]; ttlSeconds?: number } = {}): Promise<string> {
  const res = await stack.client.call<{ token?: string }>('POST', '/api/v2/hosts/join_tokens', {
    uses: opts.uses ?? 1,
    ttl_seconds: opts.ttlSeconds ?? 3600,
    ...(opts.apps ? { apps: opts.apps } : {}),
    description: 'bench',
  });
  if ((res.status !== 200 && res.status !== 201) || typeof res.body.token !== 'string') {
    throw new Error(`join token: ${res.status} ${JSON.stringify(res.body).slice(0, 300)} (does the API serve POST /api/v2/hosts/join_tokens?)`);
  }
  return res.body.token;
}

/**
 * A real worker process (DockerRuntime against the machine's engine) serving `apps`: the TypeScript
 * source, or `opts.script` with `opts.nodeArgs` (the release bundle, dist/worker/main.js, run with plain
 * node and the flags of its image). It joins with
 * a one-use token (`NEBULA_URL`, `NEBULA_JOIN_TOKEN`) and keeps its credential in a folder of its own
 * (`NEBULA_CREDENTIALS_FILE`).
 */
export async function startWorkerProcess(
  stack: BenchStack,
  hostId: string,
  apps: string[],
  env: Record<string, string> = {},
  opts: { script?: string; nodeArgs?: string[] } = {},
): Promise<ServiceProcess> {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), `nebula-bench-${hostId}-`));
  const w = await startService(
    `worker-${hostId}`,
    opts.script ?? 'services/worker/src/main.ts',
    {
      APP_NAME: apps.join(','),
      HOST_ID: hostId,
      NATS_URL: stack.nats.url,
      NEBULA_URL: stack.client.url,
      NEBULA_JOIN_TOKEN: await joinToken(stack, { apps }),
      NEBULA_CREDENTIALS_FILE: join(state, 'credentials.json'),
      METRICS_PORT: String(port),
      ...env,
    },
    port,
    opts.nodeArgs,
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
