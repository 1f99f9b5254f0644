/**
 * The local fleet of `FLEET_HOSTS=N npm start`: N simulated hosts (@nebula/local-fleet: a network
 * namespace, an address and a Docker engine each), each with a worker joined like a real host.
 *
 *   start: leftovers of a run that did not stop removed ─▶ state file ─▶ N hosts (`fleet-1`..) with
 *          the local images loaded ─▶ one join token (uses: N, the apps of APP_NAME) from the API as
 *          the local admin ─▶ a worker per host (services/worker/src/main.ts; DOCKER_HOST of its
 *          engine, log and credential in .stack/fleet/<host>/) ─▶ table
 *   stop:  workers (SIGTERM) ─▶ hosts removed (engines, their containers and data, namespaces, veths)
 *          ─▶ credentials and state file removed (the workers' logs stay)
 *
 * A worker that exits is reported; nothing else stops. Host ids are `fleet-<n>`, the same at every
 * start: a restarted fleet is the same hosts joining again (each with a new key) rather than new ones.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  allPids,
  cleanupStaleHosts,
  cmdline,
  environ,
  FAMILIES,
  isRunning,
  type ProcRef,
  procRef,
  type SimulatedHosts,
  startHosts,
  terminate,
} from '@nebula/local-fleet';
import { type ApiAuth, type FleetConfig, fleetHostId, workerEnv } from './config.ts';
import { type FleetHostState, type FleetState, readState, removeState, writeState } from './state.ts';
import type { HostRow } from './table.ts';

const exec = promisify(execFile);

export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
const WORKER_MAIN = join(REPO_ROOT, 'services', 'worker', 'src', 'main.ts');
const WORKER_READY_MS = 60_000;
const WORKER_STOP_GRACE_MS = 10_000;

export type Say = (line: string) => void;

/** A fleet of this checkout runs already (its process is alive). */
export class FleetRunningError extends Error {}

function credentialsFile(dir: string, hostId: string): string {
  return join(dir, hostId, 'credentials.json');
}

/** Removes the hosts' credentials (a next start joins them again with a token). */
function removeCredentials(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) if (/^fleet-\d+$/.test(e)) rmSync(credentialsFile(dir, e), { force: true });
}

/**
 * Removes what a local fleet of this checkout left when it did not stop (a crash, a kill -9, a
 * reboot): its workers (those its state file names, and any worker whose credentials file lies in
 * `dir`), the hosts of every local-fleet run whose process is gone (by their run's names only),
 * the hosts' credentials and the state file. Throws FleetRunningError when the fleet still runs.
 */
export async function removeLeftovers(dir: string): Promise<{ workers: number; runs: string[]; state: boolean }> {
  const state = readState(dir);
  if (state && isRunning(state.owner)) {
    throw new FleetRunningError(`a local fleet is running (pid ${state.owner.pid}, started ${state.started_at}): stop the npm start that runs it first`);
  }
  const workers: ProcRef[] = [];
  for (const h of state?.hosts ?? []) if (h.worker && isRunning(h.worker)) workers.push(h.worker);
  for (const pid of allPids()) {
    if (workers.some((w) => w.pid === pid) || !cmdline(pid).includes(WORKER_MAIN)) continue;
    if (environ(pid, 'NEBULA_CREDENTIALS_FILE')?.startsWith(`${dir}/`)) {
      const ref = procRef(pid);
      if (ref) workers.push(ref);
    }
  }
  await terminate(workers, 5_000);
  const runs = await cleanupStaleHosts(FAMILIES.local);
  const hadState = state !== null || readFileSafe(join(dir, 'state.json')) !== null;
  removeState(dir);
  removeCredentials(dir);
  return { workers: workers.length, runs, state: hadState };
}

function readFileSafe(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function authHeader(auth: ApiAuth): string {
  return auth.kind === 'basic' ? `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}` : `Bearer ${auth.token}`;
}

/** A join token for `uses` hosts serving `apps`, from the API as the local admin. */
export async function createJoinToken(cfg: FleetConfig, uses: number): Promise<string> {
  if (!cfg.auth) throw new Error('no API credentials to create a join token with: set BASIC_AUTH_USER and BASIC_AUTH_PASSWORD, or AUTH_TOKEN');
  // A host following a device group asks for the group's apps too: a token limited to APP_NAME would refuse them.
  const limited = cfg.apps.length > 0 && cfg.deviceGroup === null;
  const body = { ttl_seconds: 600, uses, description: `local fleet of npm start (${uses} hosts)`, ...(limited ? { apps: cfg.apps } : {}) };
  const res = await fetch(`${cfg.apiUrl}/api/v2/hosts/join_tokens`, {
    method: 'POST',
    headers: { authorization: authHeader(cfg.auth), 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200) {
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      /* not JSON */
    }
    throw new Error(`the API (${cfg.apiUrl}) refused to create a join token for the local fleet: ${res.status} ${message}`);
  }
  const token = (JSON.parse(text) as { token?: unknown }).token;
  if (typeof token !== 'string') throw new Error('the API answered a join token request without a token');
  return token;
}

/** The images of `wanted` the machine's engine has (the others are named in `missing`). */
async function presentImages(wanted: string[]): Promise<{ present: string[]; missing: string[] }> {
  const present: string[] = [];
  const missing: string[] = [];
  for (const image of wanted) {
    const ok = await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', image], { timeout: 10_000 }).then(
      () => true,
      () => false,
    );
    (ok ? present : missing).push(image);
  }
  return { present, missing };
}

/** Whether a host's engine answers (within 5 s). */
export async function engineAnswers(dockerHost: string): Promise<boolean> {
  try {
    const { stdout } = await exec('docker', ['-H', dockerHost, 'version', '--format', '{{.Server.Version}}'], { timeout: 5_000, killSignal: 'SIGKILL' });
    return stdout.trim().length > 0;
  } catch {
    return false;
  }
}

export async function hostRows(hosts: FleetHostState[]): Promise<HostRow[]> {
  return Promise.all(
    hosts.map(async (h) => ({
      host_id: h.host_id,
      address: h.address,
      apps: h.apps,
      engine: (await engineAnswers(h.docker_host)) ? 'up' : 'down',
      worker: h.worker && isRunning(h.worker) ? 'running' : 'exited',
    })),
  );
}

/** Waits until a worker has joined and runs (its log says "worker started"), or has exited. */
async function workerReady(child: ChildProcess, log: string): Promise<'ready' | 'exited' | 'timeout'> {
  const deadline = Date.now() + WORKER_READY_MS;
  for (;;) {
    if ((readFileSafe(log) ?? '').includes('"msg":"worker started"')) return 'ready';
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    if (Date.now() > deadline) return 'timeout';
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The last log line of a worker, for a report (a credential never is in a worker's log). */
function lastLogLine(log: string): string {
  const lines = (readFileSafe(log) ?? '').trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  try {
    return (JSON.parse(last) as { msg?: string }).msg ?? last.slice(0, 300);
  } catch {
    return last.slice(0, 300);
  }
}

export interface LocalFleet {
  state: FleetState;
  /** Stops the workers and removes the hosts, the credentials and the state file. Idempotent. */
  stop(): Promise<void>;
}

export async function startLocalFleet(cfg: FleetConfig, say: Say): Promise<LocalFleet> {
  if (process.getuid?.() !== 0) throw new Error('a local fleet needs root (a network namespace and a Docker engine per host)');
  mkdirSync(cfg.dir, { recursive: true });
  const left = await removeLeftovers(cfg.dir);
  if (left.state || left.workers > 0 || left.runs.length > 0) {
    say(`removed what an earlier local fleet left (${left.workers} worker(s), ${left.runs.length} run(s) of hosts${left.state ? ', its state file' : ''})`);
  }
  const owner = procRef(process.pid);
  if (!owner) throw new Error('cannot read this process in /proc');
  const state: FleetState = { v: 1, owner, phase: 'starting', started_at: new Date().toISOString(), api_url: cfg.apiUrl, run: null, hosts: [] };
  writeState(cfg.dir, state);
  const save = () => writeState(cfg.dir, state);

  let hosts: SimulatedHosts | null = null;
  const workers: Array<{ host: FleetHostState; child: ChildProcess }> = [];
  let stopping = false;
  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      state.phase = 'stopping';
      save();
      await terminate(
        workers.map((w) => w.host.worker).filter((r): r is ProcRef => r !== null),
        WORKER_STOP_GRACE_MS,
      );
      await hosts?.cleanup();
      removeCredentials(cfg.dir);
      removeState(cfg.dir);
    })();
    return stopped;
  };

  try {
    const images = await presentImages(cfg.images);
    if (images.missing.length > 0)
      say(`not on this machine's engine, not loaded: ${images.missing.join(', ')} (hosts pull from the registry at 127.0.0.1:5000)`);
    say(`starting ${cfg.hosts} host(s)${images.present.length > 0 ? ` with ${images.present.join(', ')}` : ''}`);
    hosts = await startHosts({ family: FAMILIES.local, hosts: cfg.hosts, namePrefix: 'fleet', images: images.present, detached: true });
    state.run = { id: hosts.id, dir: hosts.dir };
    state.hosts = hosts.hosts.map((h, i) => ({
      host_id: fleetHostId(i + 1),
      address: h.address,
      apps: cfg.apps,
      netns: h.netns,
      docker_host: h.dockerHost,
      engine: h.engine(),
      worker: null,
      worker_exit: null,
      log: join(cfg.dir, fleetHostId(i + 1), 'worker.log'),
    }));
    save();

    const token = await createJoinToken(cfg, cfg.hosts);
    for (const host of state.hosts) {
      mkdirSync(join(cfg.dir, host.host_id), { recursive: true, mode: 0o700 });
      rmSync(credentialsFile(cfg.dir, host.host_id), { force: true });
      const log = openSync(host.log, 'w');
      const child = spawn(process.execPath, [WORKER_MAIN], {
        cwd: REPO_ROOT,
        env: workerEnv(process.env, {
          HOST_ID: host.host_id,
          APP_NAME: host.apps.join(','),
          ...(cfg.deviceGroup !== null ? { DEVICE_GROUP: cfg.deviceGroup } : {}),
          DOCKER_HOST: host.docker_host,
          NEBULA_URL: cfg.apiUrl,
          NEBULA_JOIN_TOKEN: token,
          NEBULA_CREDENTIALS_FILE: credentialsFile(cfg.dir, host.host_id),
          METRICS_PORT: '0',
        }),
        stdio: ['ignore', log, log],
        // Its own process group: a Ctrl-C reaches this process, which stops the workers before the engines.
        detached: true,
      });
      closeSync(log);
      child.on('error', (err) => say(`${host.host_id}: its worker could not start: ${err.message}`));
      host.worker = procRef(child.pid);
      child.on('exit', (code, sig) => {
        host.worker_exit = sig ?? String(code);
        if (stopping) return;
        say(`${host.host_id}: its worker exited (${sig ?? `code ${code}`}): ${lastLogLine(host.log)} (log: ${host.log}); the rest of the fleet runs on`);
        save();
      });
      workers.push({ host, child });
      save();
    }
    const ready = await Promise.all(workers.map(async (w) => ({ w, r: await workerReady(w.child, w.host.log) })));
    for (const { w, r } of ready) {
      if (r === 'timeout') say(`${w.host.host_id}: its worker has not started within ${WORKER_READY_MS / 1000} s (log: ${w.host.log})`);
    }
    state.phase = 'running';
    save();
    return { state, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The rows of a fleet's state as they are now, or null when no fleet runs (no state, or its process is gone). */
export async function currentFleet(dir: string): Promise<{ state: FleetState; rows: HostRow[] } | { state: null; stale: boolean }> {
  const state = readState(dir);
  if (!state) return { state: null, stale: readFileSafe(join(dir, 'state.json')) !== null };
  if (!isRunning(state.owner)) return { state: null, stale: true };
  return { state, rows: await hostRows(state.hosts) };
}
