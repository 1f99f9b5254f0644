import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cmdline, isRunning, listLinks, listNetns, type ProcRef } from '@nebula/local-fleet';
import { waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Harness, startHarness } from '../src/e2e/harness.ts';
import { REPO_ROOT } from '../src/e2e/processes.ts';
import { ECHO } from '../src/e2e/steps.ts';
import type { FleetState } from '../src/fleet/state.ts';

/**
 * The local fleet of `FLEET_HOSTS=N npm start` (tools/src/fleet/main.ts, as start.sh runs it),
 * against a control plane of its own (the e2e harness's: PostgreSQL, NATS, two APIs, a notifier; no
 * hosts of the harness's). The fleet's state goes to a folder of this run, so a fleet of the
 * checkout's own `npm start` is never touched.
 */
const MAIN = join(REPO_ROOT, 'tools', 'src', 'fleet', 'main.ts');
const APP = `lf${process.pid}`;
let h: Harness;
let fleetDir: string;
/** Every fleet process the tests started: stopped at the end whatever happened. */
const started: ChildProcess[] = [];

test.before(async () => {
  h = await startHarness({ hosts: 0, apps: () => [] });
  fleetDir = join(h.logDir, 'fleet');
  mkdirSync(fleetDir, { recursive: true });
});
test.after(async () => {
  const running = started.filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(
    running.map(
      (c) =>
        new Promise((r) => {
          c.once('exit', r);
          c.kill('SIGTERM');
        }),
    ),
  );
  if (fleetDir) fleetCli('cleanup');
  await h?.close();
});

function fleetEnv(hosts: number): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    FLEET_HOSTS: String(hosts),
    APP_NAME: APP,
    NEBULA_URL: h.apiUrl(0),
    BASIC_AUTH_USER: h.auth.user,
    BASIC_AUTH_PASSWORD: h.auth.password,
    NATS_URL: h.nats.url,
    NEBULA_FLEET_DIR: fleetDir,
    // The workers inherit these, as they would npm start's: a fast test run.
    HEARTBEAT_INTERVAL_SECONDS: '1',
    STOP_TIMEOUT_SECONDS: '1',
    ROLL_SETTLE_SECONDS: '0.5',
    WORKER_SETTLE_SECONDS: '1',
    LOG_LEVEL: 'info',
  };
}

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  state: FleetState;
}

/** `node tools/src/fleet/main.ts start` until it has printed the fleet's table. */
async function startFleet(hosts: number): Promise<Running> {
  const child = spawn(process.execPath, [MAIN, 'start'], { env: fleetEnv(hosts), stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const up = await waitFor(
    'the local fleet table, or its exit',
    () => (out.includes('Local fleet:') ? 'up' : child.exitCode !== null ? 'exited' : false),
    90_000,
    100,
  );
  if (up === 'exited') throw new Error(`the fleet exited (${child.exitCode}): ${out}`);
  const state = JSON.parse(readFileSync(join(fleetDir, 'state.json'), 'utf8')) as FleetState;
  return { child, output: () => out, exited, state };
}

function fleetCli(...args: string[]): { code: number; stdout: string } {
  try {
    return { code: 0, stdout: execFileSync(process.execPath, [MAIN, ...args], { env: fleetEnv(0), timeout: 30_000 }).toString() };
  } catch (err) {
    const e = err as { status: number; stdout: Buffer };
    return { code: e.status, stdout: e.stdout.toString() };
  }
}

async function answerAt(address: string, port: number): Promise<{ env: Record<string, string> } | undefined> {
  try {
    const r = await fetch(`http://${address}:${port}/`, { signal: AbortSignal.timeout(2000) });
    return r.status === 200 ? ((await r.json()) as { env: Record<string, string> }) : undefined;
  } catch {
    return undefined;
  }
}

/** What is left on the machine of a fleet run: its namespaces, links, folder, engines, workers. */
async function leftOf(state: FleetState): Promise<string[]> {
  const run = state.run;
  assert.ok(run, 'the state names its run of hosts');
  const id = run.id;
  const left: string[] = [];
  for (const ns of await listNetns()) if (ns.startsWith(`nbf${id}`)) left.push(`netns ${ns}`);
  for (const l of await listLinks()) if (l.startsWith(`nbf${id}`)) left.push(`link ${l}`);
  if (existsSync(run.dir)) left.push(`folder ${run.dir}`);
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    if (cmdline(Number(pid)).includes(`${run.dir}/`)) left.push(`process ${pid}: ${cmdline(Number(pid)).slice(0, 80)}`);
  }
  for (const x of state.hosts) {
    for (const ref of [x.engine, x.worker] as Array<ProcRef | null>) if (isRunning(ref)) left.push(`process ${ref?.pid} of ${x.host_id}`);
  }
  return left;
}

test('FLEET_HOSTS=2: two hosts joined with a token, listed by status, an app answers at each address; a worker that exits is reported; SIGTERM removes everything', async () => {
  const f = await startFleet(2);
  assert.is(f.state.phase, 'running');
  assert.equal(
    f.state.hosts.map((x) => x.host_id),
    ['fleet-1', 'fleet-2'],
  );

  const status = fleetCli('status', '--json');
  assert.is(status.code, 0, status.stdout);
  const listed = JSON.parse(status.stdout) as Array<{ host_id: string; address: string; apps: string[]; engine: string; worker: string }>;
  assert.equal(
    listed.map((x) => [x.host_id, x.apps, x.engine, x.worker]),
    [
      ['fleet-1', [APP], 'up', 'running'],
      ['fleet-2', [APP], 'up', 'running'],
    ],
  );
  const addresses = listed.map((x) => x.address);
  assert.is(new Set(addresses).size, 2);
  for (const a of addresses) assert.match(a, /^10\.232\.\d+\.\d+$/);
  const table = fleetCli('status');
  for (const x of listed) assert.match(table.stdout, new RegExp(`${x.host_id}\\s+${x.address.replaceAll('.', '\\.')}\\s+${APP}\\s+up\\s+running`));
  // Joined as real hosts do, through the API: both online.
  await waitFor('both fleet hosts online', async () => (await h.onlineHosts()) === 2, 20_000, 200);

  // One call, every host: an app with a port, pulled from the registry by each host.
  await h.rest.expect(200, 'POST', `/api/v2/apps/${APP}`, { body: { docker_image: ECHO, starting_ports: [{ '8300': '80' }], env_vars: { WHO: 'fleet' } } });
  for (const a of addresses) {
    const body = await waitFor(`${APP} answering at ${a}:8300`, () => answerAt(a, 8300), 30_000, 200);
    assert.is(body?.env.WHO, 'fleet', JSON.stringify(body));
  }

  // A worker that exits is reported; the rest of the fleet runs on.
  const second = f.state.hosts[1]!;
  process.kill(second.worker!.pid, 'SIGKILL');
  await waitFor('the exit reported', () => f.output().includes('fleet-2: its worker exited'), 10_000);
  const after = fleetCli('status', '--json');
  assert.is(after.code, 1, 'status exits 1 while a host is not all there');
  assert.equal(
    (JSON.parse(after.stdout) as Array<{ worker: string }>).map((x) => x.worker),
    ['running', 'exited'],
  );
  assert.ok(await answerAt(addresses[0]!, 8300), 'fleet-1 still answers');
  assert.is(f.child.exitCode, null, 'the fleet still runs');

  // No credential in what the fleet printed or its workers logged.
  const logs = f.state.hosts.map((x) => readFileSync(x.log, 'utf8')).join('\n');
  for (const text of [f.output(), logs]) {
    assert.not.match(text, h.auth.password);
    assert.not.match(text, /nebula-join\.[^.\s"]+\.[^.\s"]+\.[^.\s"]+/);
  }

  f.child.kill('SIGTERM');
  assert.is(await f.exited, 0, f.output());
  assert.equal(await leftOf(f.state), []);
  assert.ok(!existsSync(join(fleetDir, 'state.json')), 'the state file is removed');
  assert.ok(!existsSync(join(fleetDir, 'fleet-1', 'credentials.json')), 'the hosts credentials are removed');
  assert.ok(existsSync(join(fleetDir, 'fleet-1', 'worker.log')), 'the workers logs stay');
  assert.equal(fleetCli('status', '--json'), { code: 0, stdout: '[]\n' });
  const none = fleetCli('status');
  assert.is(none.code, 0);
  assert.match(none.stdout, 'no local fleet is running');
  await h.rest.expect(200, 'DELETE', `/api/v2/apps/${APP}`);
});

test('a fleet killed with SIGKILL leaves its hosts and workers; the next start removes them before it starts its own', async () => {
  const killed = await startFleet(1);
  killed.child.kill('SIGKILL');
  await killed.exited;
  const left = await leftOf(killed.state);
  assert.ok(
    left.some((l) => l.startsWith('netns')) && left.some((l) => l.includes('of fleet-1')),
    `engines, workers and namespaces outlive a killed fleet: ${left.join('; ')}`,
  );
  const stale = fleetCli('status');
  assert.is(stale.code, 0);
  assert.match(stale.stdout, 'did not stop cleanly');

  const next = await startFleet(1);
  try {
    assert.equal(await leftOf(killed.state), [], 'nothing of the killed fleet is left');
    assert.match(next.output(), 'removed what an earlier local fleet left');
    assert.is.not(next.state.run?.id, killed.state.run?.id);
    const listed = JSON.parse(fleetCli('status', '--json').stdout) as Array<{ host_id: string; worker: string }>;
    assert.equal(
      listed.map((x) => [x.host_id, x.worker]),
      [['fleet-1', 'running']],
    );
    // A second start while one runs is refused, and touches nothing of the running one.
    const twice = spawn(process.execPath, [MAIN, 'start'], { env: fleetEnv(1), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    twice.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    assert.is(await new Promise((r) => twice.on('exit', r)), 1);
    assert.match(err, 'a local fleet is running');
    assert.ok(isRunning(next.state.hosts[0]!.worker), 'the running fleet is untouched');
  } finally {
    next.child.kill('SIGTERM');
    await next.exited;
  }
  assert.equal(await leftOf(next.state), []);
});

test.run();
