/**
 * The whole system, started for real, for end-to-end tests:
 *
 *   testcontainers ─ PostgreSQL (nebula/postgres:15)     NATS JetStream (nebula/nats:2.10)
 *                          │      ╲                   ╱        │
 *   processes      api-1, api-2 (REST + tRPC)   notifier      │        clients: REST over fetch (as curl),
 *                                                             │        @nebula/client, the nebula CLI
 *                                                             │
 *   fleet          host-1 ─ dockerd + worker-host-1 ──────────┤
 *                  host-2 ─ dockerd + worker-host-2 ──────────┤   (each host: own network namespace,
 *                  host-3 ─ dockerd + worker-host-3 ──────────┘    address, engine and APP_NAME list)
 *
 * Lifecycle: startHarness() ─▶ tests (may stop, kill, pause, restart any part) ─▶ close().
 * start cleans up what crashed earlier runs left behind (fleets, containers, child processes, test
 * images); close removes everything this run made, whatever state the parts are in. Logs of every process go to
 * .stack/e2e/<run>/.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ConnectionOptions } from '@nats-io/transport-node';
import { type BusDirectory, busConnectOptions, ensureBusDirectory } from '@nebula/bus-auth';
import { createNebulaClient, type NebulaClient } from '@nebula/client';
import { cleanupStaleFleets, type Fleet, freePort, startFleet, type TestHost, waitFor } from '@nebula/test-kit';
import type { Test } from 'uvu';
import { type InfraContainer, removeRunImages, removeRunInfra, removeStaleInfra, startNats, startPostgres } from './infra.ts';
import { processAlive, REPO_ROOT, type ReadyCheck, ServiceProcess } from './processes.ts';
import type { Report } from './report.ts';
import { RestClient } from './rest.ts';
import { type LogScan, runSecrets, scanLogs } from './secret-scan.ts';

const exec = promisify(execFile);

export const E2E_DIR = join(REPO_ROOT, '.stack', 'e2e');
const PIDS_DIR = join(E2E_DIR, 'pids');

export interface HarnessOptions {
  hosts?: number;
  /** The apps (APP_NAME) the worker of host `index` (0-based) serves. */
  apps: (index: number) => string[];
  /** Local images loaded into every host's engine at start. */
  images?: string[];
  /** Extra worker environment (applied to every worker). */
  workerEnv?: Record<string, string>;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node services/cli/src/main.ts ...args` as a user would run `nebula`. */
function runCli(url: string, auth: Auth, args: string[], opts: { stdin?: string; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'services/cli/src/main.ts'), ...args], {
      env: { PATH: process.env.PATH ?? '', NEBULA_URL: url, NEBULA_USER: auth.user, NEBULA_PASSWORD: auth.password },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

export interface Auth {
  user: string;
  password: string;
  token: string;
}

export interface Harness {
  runId: string;
  logDir: string;
  auth: Auth;
  postgres: InfraContainer & { url: string };
  nats: InfraContainer & { url: string };
  /** Connection options for the run's NATS as its admin (every right) or as the API. */
  natsOptions(who: 'admin' | 'api', extra?: ConnectionOptions): ConnectionOptions;
  bus: BusDirectory;
  apis: ServiceProcess[];
  /** Base URL of replica `i` (as of its last start). */
  apiUrl(i: number): string;
  notifier: ServiceProcess;
  fleet: Fleet;
  hosts: TestHost[];
  workers: ServiceProcess[];
  /** The worker of a host, by host name. */
  worker(host: string): ServiceProcess;
  /**
   * Another worker process (not started): the harness's settings for `host` (its engine, NATS, the
   * worker defaults) with `env` over them, e.g. a second worker with a host id already in use, or a
   * worker with another app list. Removed with everything else at close.
   */
  extraWorker(name: string, host: TestHost, env: Record<string, string>): ServiceProcess;
  /** REST over plain HTTP, as curl would (round robin over the running API replicas). */
  rest: RestClient;
  /** The `nebula` CLI as a child process (NEBULA_URL of replica `api`, basic auth). */
  cli(args: string[], opts?: { stdin?: string; api?: number; timeoutMs?: number }): Promise<CliResult>;
  /** The typed tRPC client (`@nebula/client`) of replica `i`. */
  client(i?: number): NebulaClient;
  /**
   * Credentials found in the logs of every process of the run so far (secret-scan.ts): the admin's,
   * the join token, every NATS seed and JWT of the bus and of the hosts. Empty when none leaked.
   */
  secretsInLogs(): LogScan;
  /** Hosts online, as the API tells (from the heartbeats the notifier wrote). */
  onlineHosts(): Promise<number>;
  close(): Promise<void>;
}

const WORKER_DEFAULTS: Record<string, string> = {
  STOP_TIMEOUT_SECONDS: '1',
  ACK_WAIT_SECONDS: '5',
  ROLL_SETTLE_SECONDS: '0.5',
  // New containers are watched this long before an apply counts (default 10 s).
  WORKER_SETTLE_SECONDS: '1',
  HEARTBEAT_INTERVAL_SECONDS: '1',
  HEALTH_CHECK_INTERVAL_SECONDS: '2',
  LOG_LEVEL: 'info',
};

/** Missed heartbeats (of 1 s) before a host is offline; a little slack for a loaded machine. */
const OFFLINE_AFTER = '5';

/** Kills the service processes of earlier runs whose test process is gone (they would run forever). */
function killStaleProcesses(): void {
  mkdirSync(PIDS_DIR, { recursive: true });
  for (const file of readdirSync(PIDS_DIR)) {
    const owner = Number(/p(\d+)$/.exec(file)?.[1]);
    if (Number.isInteger(owner) && processAlive(owner)) continue;
    for (const line of readFileSync(join(PIDS_DIR, file), 'utf8').split('\n').filter(Boolean)) {
      const [pid, main] = line.split(' ');
      try {
        // Only a process that still is what we started, by its absolute entry point (pids get reused,
        // and other checkouts on this machine run the same services).
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (main && cmdline.includes(main)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(join(PIDS_DIR, file), { force: true });
  }
}

/** Like Promise.all, but lets every start finish (or fail) before throwing, so cleanup sees them all. */
async function allOrFirstError(ps: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(ps)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const runId = `${Math.random().toString(36).slice(2, 7)}p${process.pid}`;
  const logDir = join(E2E_DIR, runId);
  mkdirSync(logDir, { recursive: true });
  killStaleProcesses();
  await Promise.all([cleanupStaleFleets(), removeStaleInfra(), removeRunImages()]);
  // Old runs' logs: keep the last few.
  const old = readdirSync(E2E_DIR)
    .filter((d) => /^[a-z0-9]+p\d+$/.test(d) && d !== runId)
    .sort();
  for (const d of old.slice(0, Math.max(0, old.length - 6))) rmSync(join(E2E_DIR, d), { recursive: true, force: true });

  const auth: Auth = { user: 'admin', password: `pw-${runId}`, token: `tok-${runId}-${Math.random().toString(36).slice(2)}` };
  const pidFile = join(PIDS_DIR, runId);
  const procs: ServiceProcess[] = [];
  const infra: InfraContainer[] = [];
  let fleet: Fleet | null = null;

  const trackPids = () =>
    writeFileSync(
      pidFile,
      `${procs
        .filter((p) => p.pid !== undefined)
        .map((p) => `${p.pid} ${join(REPO_ROOT, p.main)}`)
        .join('\n')}\n`,
    );
  // A test process that ends without close() (an exception, Ctrl-C) takes its children with it.
  const killAll = () => {
    for (const p of procs) if (p.pid !== undefined && p.running()) process.kill(p.pid, 'SIGKILL');
  };
  const onSignal = () => {
    killAll();
    process.exit(130);
  };
  process.on('exit', killAll);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const close = async () => {
    await Promise.allSettled(procs.map((p) => p.dispose()));
    await Promise.allSettled([fleet?.cleanup(), ...infra.map((c) => c.remove())]);
    await removeRunInfra(runId).catch(() => undefined);
    await removeRunImages(runId).catch(() => undefined);
    rmSync(pidFile, { force: true });
    process.off('exit', killAll);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };

  try {
    const tracked = <C extends InfraContainer>(c: C): C => {
      infra.push(c);
      return c;
    };
    const pg = startPostgres(runId).then(tracked);
    // The bus runs secured, as users run it: its keys and the services' credentials in logDir/bus.
    const bus = await ensureBusDirectory(join(logDir, 'bus'), { resolverDir: '/data/accounts' });
    const nt = startNats(runId, bus).then(tracked);
    const fl = startFleet({ hosts: opts.hosts ?? 3, images: opts.images ?? [] }).then((f) => (fleet = f));
    await allOrFirstError([pg, nt, fl]);
    const [postgres, nats, startedFleet] = [await pg, await nt, await fl];
    const hosts = startedFleet.hosts;

    const service = (name: string, main: string, env: Record<string, string> | (() => Promise<Record<string, string>>), ready: ReadyCheck) => {
      const p = new ServiceProcess({ name, main, env, ready, logDir, onStart: trackPids });
      procs.push(p);
      return p;
    };

    // A replica's port is picked at each start (a restarted one may get another): read it through apiUrl().
    const apiUrl = (i: number) => {
      const api = apis[i];
      if (!api) throw new Error(`no API replica ${i}`);
      return `http://127.0.0.1:${api.env.API_PORT}`;
    };
    const apis: ServiceProcess[] = [0, 1].map((i) =>
      service(
        `api-${i + 1}`,
        'services/api/src/main.ts',
        async () => ({
          API_PORT: String(await freePort()),
          API_HOST: '127.0.0.1',
          DATABASE_URL: postgres.url,
          NATS_URL: nats.url,
          NATS_CREDS: bus.apiCreds,
          BUS_KEYS_FILE: bus.controlPlaneKeys,
          BASIC_AUTH_USER: auth.user,
          BASIC_AUTH_PASSWORD: auth.password,
          AUTH_TOKEN: auth.token,
          HOST_OFFLINE_AFTER_MISSED_HEARTBEATS: OFFLINE_AFTER,
          // A lost APPS stream is put back within 2 s (default 30 s).
          APPS_STREAM_CHECK_SECONDS: '2',
          LOG_LEVEL: 'info',
        }),
        async (_out, env) => (await fetch(`http://127.0.0.1:${env.API_PORT}/health`, { signal: AbortSignal.timeout(2000) })).status === 200,
      ),
    );
    const notifier = service(
      'notifier',
      'services/notifier/src/main.ts',
      async () => ({
        DATABASE_URL: postgres.url,
        NATS_URL: nats.url,
        NATS_CREDS: bus.notifierCreds,
        METRICS_PORT: String(await freePort()),
        HOST_OFFLINE_AFTER_MISSED_HEARTBEATS: OFFLINE_AFTER,
        NOTIFIER_FLUSH_INTERVAL_MS: '50',
        NOTIFIER_ACK_WAIT_MS: '5000',
        LOG_LEVEL: 'info',
      }),
      (out) => out.includes('"notifier started"'),
    );
    // Hosts join as on a real fleet: one token for the run; each keeps its credential in logDir.
    let joinToken = '';
    const workerEnv = async (h: TestHost, i: number) => ({
      ...WORKER_DEFAULTS,
      ...opts.workerEnv,
      APP_NAME: opts.apps(i).join(','),
      HOST_ID: h.name,
      DOCKER_HOST: h.dockerHost,
      NATS_URL: nats.url,
      NEBULA_URL: apiUrl(0),
      NEBULA_JOIN_TOKEN: joinToken,
      NEBULA_CREDENTIALS_FILE: join(logDir, `${h.name}.credentials.json`),
      METRICS_PORT: String(await freePort()),
    });
    const workerReady: ReadyCheck = (out) => out.includes('"worker started"');
    const workers = hosts.map((h, i) => service(`worker-${h.name}`, 'services/worker/src/main.ts', () => workerEnv(h, i), workerReady));

    // The API replicas run the migrations under an advisory lock: they may start together.
    await allOrFirstError([...apis, notifier].map((p) => p.start()));
    const rest = new RestClient(() => apis.map((a, i) => ({ url: apiUrl(i), up: a.running() })), auth);
    joinToken = (
      await rest.expect<{ token: string }>(200, 'POST', '/api/v2/hosts/join_tokens', { body: { ttl_seconds: 3600, uses: 1000, description: `e2e ${runId}` } })
    ).token;
    await allOrFirstError(workers.map((w) => w.start()));

    const onlineHosts = async () => (await rest.expect<{ hosts: unknown[] }>(200, 'GET', '/api/v2/hosts?status=online')).hosts.length;
    // Rollouts expect the hosts that are online: start testing once every host is.
    await waitFor('every host online', async () => (await onlineHosts()) === hosts.length, 30_000, 200);

    const harness: Harness = {
      runId,
      logDir,
      auth,
      postgres,
      nats,
      natsOptions: (who, extra = {}) => ({
        ...busConnectOptions({ servers: [nats.url], creds: readFileSync(who === 'admin' ? bus.adminCreds : bus.apiCreds, 'utf8'), name: `e2e-${who}` }),
        ...extra,
      }),
      bus,
      apis,
      apiUrl,
      notifier,
      fleet: startedFleet,
      hosts,
      workers,
      worker(host) {
        const w = workers[hosts.findIndex((h) => h.name === host)];
        if (!w) throw new Error(`no host ${host}`);
        return w;
      },
      extraWorker(name, host, env) {
        const i = hosts.indexOf(host);
        return service(
          name,
          'services/worker/src/main.ts',
          async () => {
            const e: Record<string, string> = { ...(await workerEnv(host, i)), ...env };
            // The credential goes with the host id (a second worker with host-1's id is host-1's key).
            e.NEBULA_CREDENTIALS_FILE = env.NEBULA_CREDENTIALS_FILE ?? join(logDir, `${e.HOST_ID}.credentials.json`);
            return e;
          },
          workerReady,
        );
      },
      rest,
      cli: (args, o = {}) => runCli(apiUrl(o.api ?? 0), auth, args, o),
      client: (i = 0) => createNebulaClient({ url: apiUrl(i), username: auth.user, password: auth.password }),
      onlineHosts,
      secretsInLogs: () => scanLogs(logDir, runSecrets(logDir, auth, [joinToken])),
      close,
    };
    return harness;
  } catch (err) {
    console.error(`e2e harness did not start (logs in ${logDir}):`, err);
    await close();
    throw err;
  }
}

/** Runs a command inside a host's network namespace (iptables, ss...). */
export async function inHost(host: TestHost, cmd: string, args: string[]): Promise<string> {
  const { stdout } = await exec('nsenter', [`--net=/var/run/netns/${host.netns}`, cmd, ...args]);
  return stdout;
}

/**
 * One harness per test file: started before the file's first case (then `started` runs, to keep the
 * harness and prepare what the file needs, such as images), closed after its last case; the start
 * time goes into the file's report, which is written at the end.
 */
export function harnessPerFile(test: Test, report: Report, label: string, opts: HarnessOptions, started: (h: Harness) => Promise<void> | void): void {
  let harness: Harness | undefined;
  test.before(async () => {
    const t0 = Date.now();
    try {
      harness = await startHarness(opts);
      await started(harness);
    } catch (err) {
      console.error(`${label}: start failed`, err);
      throw err;
    }
    report.setupMs = Date.now() - t0;
  });
  test.after(async () => {
    report.write();
    await harness?.close();
  });
}
