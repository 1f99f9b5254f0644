import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AppConfigInput } from '@nebula/contracts';
import { DEFAULT_HOST_CONSUMER_TUNING, ensureHostConsumers } from '@nebula/messaging';
import { freePort, startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { answers, containersOf, ECHO, freePortRange, removeHostContainers } from './docker-helpers.ts';
import { collectResults, createStreams, envelope, publishApp, startTestBus, suffix, type TestBus, writeHostCredentials } from './helpers.ts';

/** The worker as it runs in production: `node services/worker/src/main.ts`, configured by env. */
const MAIN = join(import.meta.dirname, '..', 'src', 'main.ts');
let nats: TestNatsServer;
let nc: NatsConnection;
let bus: TestBus;
const host = `p-${suffix()}`;
const app = `proc-${suffix()}`;
const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'nebula-worker-process-'));
const credentials = join(dir, 'credentials.json');
/** The host joined before (its file written as a join leaves it); the API need not answer while its JWT is valid. */
let nebulaUrl: string;
let hostPublicKey: string;

async function spawnWorker(): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      APP_NAME: app,
      HOST_ID: host,
      NATS_URL: nats.url,
      NEBULA_CREDENTIALS_FILE: credentials,
      NEBULA_URL: nebulaUrl,
      METRICS_PORT: String(await freePort()),
      STOP_TIMEOUT_SECONDS: '1',
      ACK_WAIT_SECONDS: '2',
      ROLL_SETTLE_SECONDS: '1',
      WORKER_SETTLE_SECONDS: '1',
      HEARTBEAT_INTERVAL_SECONDS: '1',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor('the worker to run', () => out.includes('"worker started"') || child.exitCode !== null, 20_000);
  assert.is(child.exitCode, null, out);
  return { child, output: () => out, exited };
}

const revisions = async () =>
  new Map([...(await containersOf(host))].map(([name, c]) => [name, { id: c.Id, revision: c.Labels[LABELS.revision], state: c.State }]));

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  nc = bus.admin;
  await createStreams(nc);
  nebulaUrl = `http://127.0.0.1:${await freePort()}`; // nothing listens: renewals fail, and are only logged
  hostPublicKey = (await writeHostCredentials(nats, credentials, { hostId: host, apps: [app], nebulaUrl })).publicKey;
  // What the control plane did at the join: the host's consumers.
  await ensureHostConsumers(await jetstreamManager(bus.api), host, [app], { ...DEFAULT_HOST_CONSUMER_TUNING, ackWaitMs: 2_000 });
});

test.after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await bus.close();
  await nats.cleanup();
  await removeHostContainers(host);
  rmSync(dir, { recursive: true, force: true });
});

test('killed with SIGKILL in the middle of a roll, restarted: converges without recreating what was already rolled', async () => {
  const port = await freePortRange(3);
  const results = collectResults(nc, app, { [host]: hostPublicKey });
  const cfg = (v: string): AppConfigInput => ({
    docker_image: ECHO,
    starting_ports: [{ [String(port)]: '80' }],
    containers_per: { server: 3 },
    env_vars: { V: v },
  });
  const first = await spawnWorker();
  await publishApp(bus, envelope(app, 1, 'create', cfg('1')));
  assert.is((await results.waitFor(1)).status, 'applied', first.output());
  assert.match(first.output(), /could not renew the credential at start: going on with the current one/);
  assert.ok(results.verified[0], 'the result carries the signature of the key in the credentials file');

  await publishApp(bus, envelope(app, 2, 'roll', cfg('2')));
  const atKill = await waitFor(
    'the first container rolled, the last one not yet',
    async () => {
      const r = await revisions();
      return r.get(`${app}-1`)?.revision === '2' && r.get(`${app}-1`)?.state === 'running' && r.get(`${app}-3`)?.revision === '1' ? r : undefined;
    },
    20_000,
    50,
  );
  first.child.kill('SIGKILL');
  await first.exited;
  const rolled = [...atKill].filter(([, c]) => c.revision === '2' && c.state === 'running');

  const second = await spawnWorker();
  const r2 = await results.waitFor(2, undefined, 30_000);
  assert.is(r2.status, 'applied', second.output());
  const after = await revisions();
  for (const [name, c] of rolled) assert.is(after.get(name)?.id, c.id, `${name} was kept`);
  assert.equal(
    [...after.values()].map((c) => c.revision),
    ['2', '2', '2'],
  );
  for (const p of [port, port + 1, port + 2]) assert.is((await answers(p)).env.V, '2');

  // SIGTERM in the middle of the next roll: the roll is finished, then the worker exits.
  await publishApp(bus, envelope(app, 3, 'roll', cfg('3')));
  await waitFor('the roll to start', async () => [...(await revisions()).values()].some((c) => c.revision === '3'), 20_000, 50);
  second.child.kill('SIGTERM');
  assert.is(await second.exited, 0, second.output());
  assert.is((await results.waitFor(3)).status, 'applied');
  assert.equal(
    [...(await revisions()).values()].map((c) => [c.revision, c.state]),
    [
      ['3', 'running'],
      ['3', 'running'],
      ['3', 'running'],
    ],
  );
  // Containers keep running after the worker is gone.
  for (const p of [port, port + 1, port + 2]) assert.is((await answers(p)).env.V, '3');
  results.stop();
});

test('with APP_NAME empty and containers of ours on the engine, the worker refuses to start and names them; nothing is removed', async () => {
  const before = await revisions();
  assert.is(before.size, 3, 'the containers of the first test are still there');
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      APP_NAME: '',
      HOST_ID: host,
      NATS_URL: nats.url,
      NEBULA_CREDENTIALS_FILE: credentials,
      NEBULA_URL: nebulaUrl,
      METRICS_PORT: String(await freePort()),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.is(code, 1, out);
  assert.match(out, /"level":60/, 'a fatal line');
  assert.match(out, new RegExp(`UnservedContainersError.*3 container\\(s\\).*${app}.*REMOVE_UNSERVED=true`));
  assert.equal(await revisions(), before, 'every container is still there');
});

test('not joined and nothing to join with: exit 2, naming NEBULA_URL and NEBULA_JOIN_TOKEN', async () => {
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, APP_NAME: app, HOST_ID: `new-${suffix()}`, NATS_URL: nats.url, NEBULA_CREDENTIALS_FILE: join(dir, 'none.json'), METRICS_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.is(code, 2, out);
  const line = JSON.parse(out.trim().split('\n').pop()!) as { level: number; variables: string[]; msg: string };
  assert.is(line.level, 60);
  assert.equal(line.variables, ['NEBULA_URL', 'NEBULA_JOIN_TOKEN']);
  assert.match(line.msg, /set NEBULA_URL and NEBULA_JOIN_TOKEN/);
});

test('a wrong environment variable stops the worker with exit code 2, naming it', async () => {
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, APP_NAME: 'a.b', HEARTBEAT_INTERVAL_SECONDS: 'x' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.is(code, 2);
  assert.match(out, /APP_NAME/);
  assert.match(out, /HEARTBEAT_INTERVAL_SECONDS/);
});

test.run();
