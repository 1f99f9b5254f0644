import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers } from '@nats-io/transport-node';
import { SIGNATURE_HEADER, signMessage } from '@nebula/bus-auth';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN, nebula, type Stack, startStack, suffix } from './stack.ts';

/**
 * How a watched rollout ends when not every host applies it, --timeout, and duplicate host ids, with
 * the CLI as a child process against a running API, notifier and worker. The "ghost" hosts are
 * heartbeats published as a worker would, and nothing else: online, but never applying anything.
 */
const test = suite('cli outcomes');
let stack: Stack;
let env: Record<string, string>;
let dir: string;
const app = `api-${suffix()}`;
const real = `${app}-h0`;
const ghost = `${app}-ghost`;
let ghostTimer: NodeJS.Timeout | null = null;
const children: ChildProcess[] = [];

/** A worker process whose clock is `skewMs` off (skewed-worker.ts). */
async function startSkewedWorker(hostId: string, appName: string, skewMs: number): Promise<string> {
  const child = spawn(process.execPath, [new URL('./skewed-worker.ts', import.meta.url).pathname], {
    env: {
      ...process.env,
      NATS_URL: stack.natsUrl,
      NEBULA_CREDENTIALS_FILE: await stack.workerCredentialsFile(hostId, [appName]),
      NEBULA_URL: stack.apiUrl,
      HOST_ID: hostId,
      APP_NAME: appName,
      SKEW_MS: String(skewMs),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(`${hostId} running`, () => (out.includes('running') ? true : child.exitCode !== null ? assert.unreachable(out) : undefined), 20_000);
  return out;
}

/** A heartbeat as the contracts shape it (libs/contracts heartbeatSchema). */
function heartbeat(host: string, apps: string[], opts: { instance?: string; at?: Date; interval?: number } = {}) {
  return {
    v: 1,
    host,
    apps: apps.map((a) => ({ app: a, incarnation: null, revision: null, containers: [] })),
    cores: 1,
    memory_mb: 512,
    worker_version: 'ghost',
    interval_seconds: opts.interval ?? 0.5,
    ...(opts.instance ? { instance: opts.instance } : {}),
    at: (opts.at ?? new Date()).toISOString(),
  };
}
// A heartbeat published as the host itself: joined (its own key and credential) and signed, as a
// worker publishes it; the notifier checks the signature.
const ghosts = new Map<string, Awaited<ReturnType<Stack['joinHost']>>>();
const publish = async (hb: ReturnType<typeof heartbeat>) => {
  let bus = ghosts.get(hb.host);
  if (!bus) {
    bus = await stack.joinHost(hb.host, [app]);
    ghosts.set(hb.host, bus);
  }
  const subject = `hosts.${hb.host}`;
  const data = new TextEncoder().encode(JSON.stringify(hb));
  const h = headers();
  h.set(SIGNATURE_HEADER, signMessage(bus.identity.hostKey, subject, data));
  bus.nc.publish(subject, data, { headers: h });
  await bus.nc.flush();
};

const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nebula-cli-'));
  stack = await startStack();
  env = { NEBULA_URL: stack.api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
  await stack.startWorker(real, [app], ['img:1']);
  // The ghost's clock is 10 minutes behind: it is online all the same (the server's time counts).
  const instance = randomUUID();
  const beat = () => void publish(heartbeat(ghost, [app], { instance, at: new Date(Date.now() - 600_000) })).catch(() => undefined);
  beat();
  ghostTimer = setInterval(beat, 250);
  await waitFor(
    'both hosts online',
    async () => {
      const r = await nebula(['hosts', 'list', '--app', app, '--status', 'online', '--json'], env);
      return r.code === 0 && (JSON.parse(r.stdout) as { hosts: unknown[] }).hosts.length === 2;
    },
    15_000,
    200,
  );
});

test.after(async () => {
  if (ghostTimer) clearInterval(ghostTimer);
  for (const c of children) {
    if (c.exitCode === null) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
  }
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('worker processes whose clocks are 10 minutes behind and ahead: online, and --wait sees them apply', async () => {
  const skewApp = `skew-${suffix()}`;
  const [behind, ahead] = [`${skewApp}-behind`, `${skewApp}-ahead`];
  const said = [await startSkewedWorker(behind, skewApp, -600_000), await startSkewedWorker(ahead, skewApp, 600_000)];
  for (const [out, skew] of [
    [said[0]!, -600_000],
    [said[1]!, 600_000],
  ] as const) {
    const clock = Date.parse(/my clock says (\S+)/.exec(out)![1]!);
    assert.ok(Math.abs(clock - Date.now() - skew) < 60_000, `the child's clock is off: ${out}`);
  }
  await waitFor(
    'both skewed hosts online',
    async () => {
      const r = await nebula(['hosts', 'list', '--app', skewApp, '--status', 'online', '--json'], env);
      return r.code === 0 && (JSON.parse(r.stdout) as { hosts: unknown[] }).hosts.length === 2;
    },
    15_000,
    200,
  );
  const r = await nebula(['apps', 'create', skewApp, '-f', file('skew.yaml', 'docker_image: img:1\n'), '--wait', '--timeout', '20s'], env);
  assert.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /complete: 2\/2 hosts \(applied 2, failed 0, pending 0\)/);
  for (const h of [behind, ahead]) {
    const one = JSON.parse((await nebula(['hosts', 'get', h, '--json'], env)).stdout) as { status: string; last_seen: string };
    assert.is(one.status, 'online');
    assert.ok(Math.abs(Date.parse(one.last_seen) - Date.now()) < 60_000, `${h} last_seen ${one.last_seen} is the server's time`);
  }
});

test('--timeout: exit 4 naming the hosts still pending; bad values are usage errors', async () => {
  for (const args of [
    ['apps', 'restart', app, '--wait', '--timeout', '0'],
    ['apps', 'restart', app, '--wait', '--timeout', 'soon'],
    ['apps', 'restart', app, '--timeout', '5'],
    ['apps', 'get', app, '--timeout', '5s'],
  ]) {
    const r = await nebula(args, env);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.code} ${r.stderr}`);
    assert.match(r.stderr, /^error: .*--timeout/, args.join(' '));
  }
  const r = await nebula(['apps', 'create', app, '-f', file('web.yaml', 'docker_image: img:1\n'), '--wait', '--timeout', '2s'], env);
  assert.is(r.code, 4, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^timed out after 2s: rollout [0-9a-f-]{36} is not complete: 1 of 2 hosts still pending: ${ghost}$`, 'm'));
  const id = /rollout ([0-9a-f-]{36})/.exec(r.stdout)![1]!;
  const w = await nebula(['rollouts', 'watch', id, '--timeout', '1', '--json'], env);
  assert.is(w.code, 4, w.stderr);
  assert.match(w.stderr, new RegExp(`still pending: ${ghost}`));
  const last = JSON.parse(w.stdout.trim().split('\n').at(-1)!) as { complete: boolean; applied: number };
  assert.equal([last.complete, last.applied], [false, 1]);
});

test('a rollout complete without every expected host: exit 3 with the reason', async () => {
  const id = (await nebula(['rollouts', 'list', app, '--json'], env)).stdout.match(/"id": "([0-9a-f-]{36})"/)![1]!;
  // The ghost goes away: it turns offline, and the rollout stops waiting for it.
  clearInterval(ghostTimer!);
  ghostTimer = null;
  const r = await nebula(['rollouts', 'watch', id], env);
  assert.is(r.code, 3, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /complete, not applied everywhere: 1\/2 hosts \(applied 1, failed 0, pending 0, offline 1\)/);
  assert.match(r.stderr, new RegExp(`^rollout ${id} did not succeed: 1 of 2 hosts applied: ${ghost} offline$`, 'm'));
  const json = await nebula(['rollouts', 'get', id, '--json'], env);
  const p = JSON.parse(json.stdout) as { complete: boolean; succeeded: boolean };
  assert.equal([p.complete, p.succeeded], [true, false]);
  const list = await nebula(['rollouts', 'list', app], env);
  assert.match(list.stdout, /not applied everywhere$/m);
});

test('a rollout no host was expected to apply: exit 3, never success', async () => {
  const lonely = `lonely-${suffix()}`;
  const r = await nebula(['apps', 'create', lonely, '-f', file('lonely.yaml', 'docker_image: img:1\n'), '--wait'], env);
  assert.is(r.code, 3, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /did not succeed: no host applied it: none was expected/);
});

test('two workers with one host id: hosts list and get say so', async () => {
  const twin = `${app}-twin`;
  const [a, b] = [randomUUID(), randomUUID()];
  for (const instance of [a, b, a, b]) await publish(heartbeat(twin, [app], { instance, interval: 5 }));
  const list = await waitFor(
    'the twin flagged',
    async () => {
      const r = await nebula(['hosts', 'list', '--app', app], env);
      return /DUPLICATE/.test(r.stdout) ? r : undefined;
    },
    10_000,
    200,
  );
  assert.match(list.stdout, new RegExp(`^${twin}\\s+online\\s+.*\\s2 workers$`, 'm'));
  assert.match(list.stderr, new RegExp(`warning: ${twin}: heartbeats from more than one worker`));
  assert.match(list.stdout, new RegExp(`^${real}\\s+online\\s+`, 'm'));
  const one = JSON.parse((await nebula(['hosts', 'get', twin, '--json'], env)).stdout) as { duplicate: boolean; instances: number };
  assert.equal([one.duplicate, one.instances], [true, 2]);
  assert.match((await nebula(['hosts', 'get', twin], env)).stdout, /duplicate:\s+yes: 2 workers send heartbeats/);
  const realHost = JSON.parse((await nebula(['hosts', 'get', real, '--json'], env)).stdout) as { duplicate: boolean; instances: number };
  assert.equal([realHost.duplicate, realHost.instances], [false, 1]);
});

test.run();
