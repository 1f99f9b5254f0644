import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { appConfigSchema, heartbeatSchema, streams, subjects } from '@nebula/contracts';
import { decode } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { containerSpec } from '../src/planner/container-spec.ts';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, summarise, type Worker, type WorkerOptions } from '../src/worker.ts';
import { collectResults, createStreams, envelope, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * The reconcile loop, the start-up guard, unhealthy restarts and image removal, with a real
 * nats-server and the in-memory runtime. Timers are short; where a test steps the reconcile by hand
 * (`w.reconcile(now)`) the timers are long so that only the test's own steps run.
 */
let nats: TestNatsServer;
let nc: NatsConnection;
let bus: TestBus;
const workers: Worker[] = [];
const FAST: Partial<WorkerOptions> = {
  heartbeatIntervalMs: 200,
  ackWaitMs: 2_000,
  fetchExpiresMs: 1_000,
  retryBaseMs: 100,
  retryMaxMs: 400,
  rollSettleMs: 0,
  settleMs: 300,
  pollMs: 5,
  healthCheckIntervalMs: 100,
  reconcileIntervalMs: 200,
};
const QUIET: Partial<WorkerOptions> = {
  heartbeatIntervalMs: 600_000,
  healthCheckIntervalMs: 600_000,
  reconcileIntervalMs: 60_000,
  reconcileMaxBackoffMs: 300_000,
};

function runtime(): FakeRuntime {
  const rt = new FakeRuntime();
  for (const ref of ['img:1', 'img:2', 'img:3']) rt.registry.set(ref, `sha256:${ref.replace(':', '')}`);
  return rt;
}

async function startWorker(hostId: string, apps: string[], rt: FakeRuntime, options: Partial<WorkerOptions> = {}): Promise<Worker> {
  const w = createWorker({
    hostId,
    apps,
    ...(await bus.host(hostId, apps, { ...FAST, ...options })),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log,
    options: { ...FAST, ...options },
  });
  workers.push(w);
  await w.start();
  return w;
}

/** A logger that keeps what it is given (the worker logs through `log.child(...)` too). */
function capturingLogger(lines: Array<{ obj: Record<string, unknown>; msg: string }>): Logger {
  const l: Record<string, unknown> = {};
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) {
    l[level] = (obj: unknown, msg?: string) =>
      lines.push(typeof obj === 'string' ? { obj: {}, msg: obj } : { obj: (obj ?? {}) as Record<string, unknown>, msg: msg ?? '' });
  }
  l.child = () => l;
  return l as unknown as Logger;
}

const appContainers = (rt: FakeRuntime, app: string) => rt.all().filter((c) => c.labels[LABELS.app] === app);
const byName = (rt: FakeRuntime, name: string) => rt.all().find((c) => c.name === name);

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  nc = bus.admin;
  await createStreams(nc);
});

test.after(async () => {
  for (const w of workers) await w.stop();
  await bus.close();
  await nats.cleanup();
});

test("drift: a container removed and one stopped behind the worker's back are back within an interval, and the heartbeat says so", async () => {
  const app = `drift-${suffix()}`;
  const host = `h-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  const w = await startWorker(host, [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', containers_per: { server: 3 } }));
  await results.waitFor(1, 'applied');
  const first = byName(rt, `${app}-1`)!.id;
  await rt.remove(byName(rt, `${app}-2`)!.id);
  await rt.stop(byName(rt, `${app}-3`)!.id);
  await waitFor('both back and running', () => appContainers(rt, app).filter((c) => c.state === 'running').length === 3, 5_000);
  assert.is(byName(rt, `${app}-1`)?.id, first, 'the container that did not drift is untouched');
  const stats = w.repairs()[app]!;
  assert.is(stats.repairs, 2);
  assert.match(stats.last?.what ?? '', /created .*-2: missing.*replaced .*-3: not running \(exited\)/);
  const jsm = await jetstreamManager(nc);
  const hb = await waitFor('a heartbeat with the repairs', async () => {
    const m = await jsm.streams.getMessage(streams.hosts.name, { last_by_subj: subjects.heartbeat(host) });
    const h = m && decode(heartbeatSchema, m.data);
    return h && h.apps[0]?.repairs === 2 ? h : undefined;
  });
  assert.match(hb.apps[0]?.last_repair?.what ?? '', /created .*-2: missing/);
  assert.equal(
    results.all.map((r) => r.status),
    ['applied'],
    'a repair is not a new result',
  );
  results.stop();
});

test('the reconcile never runs while a message is handled: a slow roll is not undone half-way', async () => {
  const app = `roll-${suffix()}`;
  const host = `h-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  // Ticks every 5 ms; each rolled container must stay up 150 ms before the next one.
  const w = await startWorker(host, [app], rt, { reconcileIntervalMs: 50, rollSettleMs: 150 });
  const cfg = { docker_image: 'img:1', containers_per: { server: 3 } };
  await publishApp(bus, envelope(app, 1, 'create', cfg));
  await results.waitFor(1, 'applied');
  await publishApp(bus, envelope(app, 2, 'roll', { ...cfg, env_vars: { V: '2' } }));
  assert.is((await results.waitFor(2)).status, 'applied');
  // Planned against revision 1 during the roll, a reconcile would have put rolled containers back.
  assert.is(rt.calls.filter((c) => c.op === 'create').length, 6, 'three made by the create, three by the roll');
  assert.is(w.repairs()[app]?.repairs, 0);
  assert.ok(appContainers(rt, app).every((c) => c.labels[LABELS.revision] === '2'));
  results.stop();
});

test('a failing reconcile backs off: 2, 4 intervals, up to the cap, and back to one interval once it works', async () => {
  const app = `backoff-${suffix()}`;
  const host = `h-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  const w = await startWorker(host, [app], rt, QUIET);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  await results.waitFor(1, 'applied');
  const I = 60_000;
  const t0 = Date.now() + I; // the first reconcile is due one interval after start
  rt.engineDown = true;
  const tries: number[] = [];
  for (let t = t0; t <= t0 + 16 * I; t += I) {
    const before = rt.refused;
    await w.reconcile(t);
    if (rt.refused > before) tries.push((t - t0) / I);
  }
  assert.equal(tries, [0, 2, 6, 11, 16], 'tried again after 2, 4, then 5 intervals (the cap)');
  rt.engineDown = false;
  await rt.stop(appContainers(rt, app)[0]!.id);
  await w.reconcile(t0 + 30 * I); // due since t0 + 21 I
  assert.is(appContainers(rt, app)[0]?.state, 'running', 'repaired once the engine answers');
  const calls = rt.calls.length;
  await rt.stop(appContainers(rt, app)[0]!.id);
  await w.reconcile(t0 + 30.5 * I);
  assert.is(rt.calls.length, calls + 1, 'not due yet: the stop is the only call');
  await w.reconcile(t0 + 31 * I);
  assert.is(appContainers(rt, app)[0]?.state, 'running', 'one interval later again');
  results.stop();
});

test('an adoption that failed at start (registry down, image not local) is retried by the reconcile loop', async () => {
  const app = `adopt-${suffix()}`;
  const host = `h-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  let w = await startWorker(host, [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', containers_per: { server: 2 } }));
  await results.waitFor(1, 'applied');
  await w.stop();
  // Rebuilt host: no containers, no image; the revision was acked long ago (no redelivery).
  for (const c of appContainers(rt, app)) await rt.remove(c.id);
  rt.images.clear();
  rt.registryDown = true;
  w = await startWorker(host, [app], rt);
  assert.is(appContainers(rt, app).length, 0, 'adoption failed');
  assert.equal(w.applied()[app], null);
  await waitFor('a retried pull', () => rt.pullAttempts >= 3, 5_000);
  rt.registryDown = false;
  await waitFor('adopted by the loop', () => appContainers(rt, app).filter((c) => c.state === 'running').length === 2, 5_000);
  assert.equal(w.applied()[app], { incarnation: 1, revision: 1 });
  assert.match(w.repairs()[app]?.last?.what ?? '', /adopted revision 1 after a failed start/);
  results.stop();
});

test('no app served and containers of ours on the engine: refuses to start, touches nothing; REMOVE_UNSERVED removes them, each named in the log', async () => {
  const host = `h-${suffix()}`;
  const rt = runtime();
  const cfg = appConfigSchema.parse({ docker_image: 'img:1' });
  for (const app of ['web', 'db']) rt.seed(containerSpec(cfg, { hostId: host, app, incarnation: 1, revision: 1 }, 1));
  const w = createWorker({
    hostId: host,
    apps: [],
    ...(await bus.host(host, [], FAST)),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log,
    options: FAST,
  });
  workers.push(w);
  try {
    await w.start();
    assert.unreachable('should refuse to start');
  } catch (err) {
    assert.is((err as Error).name, 'UnservedContainersError');
    assert.match((err as Error).message, /APP_NAME is empty.*2 container\(s\).*db, web.*REMOVE_UNSERVED=true/);
  }
  assert.is(w.state, 'stopped');
  assert.is(rt.all().length, 2, 'nothing removed');
  assert.equal(rt.calls, []);
  const lines: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const captured = capturingLogger(lines);
  const w2 = createWorker({
    hostId: host,
    apps: [],
    ...(await bus.host(host, [], FAST)),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log: captured,
    options: { ...FAST, removeUnserved: true },
  });
  workers.push(w2);
  await w2.start();
  assert.is(rt.all().length, 0, 'removed when told');
  const removals = lines.filter((l) => l.msg.includes('no longer serves'));
  assert.equal(removals.map((l) => l.obj.container).sort(), ['db-1', 'web-1']);
});

test('a container that stays unhealthy is restarted ever less often, not at every health check', async () => {
  const app = `sick-${suffix()}`;
  const host = `h-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  await startWorker(host, [app], rt, { healthCheckIntervalMs: 50, unhealthyRestartMaxBackoffMs: 60_000 });
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', healthcheck: { test: ['CMD', 'true'] } }));
  await results.waitFor(1, 'applied');
  // Healthy through the settle time, unhealthy from then on (restarts included).
  rt.onStart = () => ({ state: 'running', health: 'unhealthy' });
  for (const c of rt.containers.values()) c.health = 'unhealthy';
  const restarts = () => rt.calls.filter((x) => x.op === 'restart').length;
  await waitFor('the first two restarts', () => restarts() >= 2, 5_000);
  const since = Date.now();
  await new Promise((r) => setTimeout(r, 1_500));
  // Restarts at 0, 50, 150, 350, 750, 1550 ms after the first: a 50 ms health check would make ~30.
  assert.ok(restarts() <= 6, `${restarts()} restarts in ${Date.now() - since} ms and more`);
  results.stop();
});

test('a count above MAX_CONTAINERS_PER_APP fails the revision for good, naming the limit; the app keeps what it had', async () => {
  const app = `many-${suffix()}`;
  const host = `h-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  await startWorker(host, [app], rt, { maxContainersPerApp: 5 });
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', containers_per: { server: 2 } }));
  await results.waitFor(1, 'applied');
  await publishApp(bus, envelope(app, 2, 'update', { docker_image: 'img:1', containers_per: { memory: 100 } })); // 2048 / 100 = 20
  const r = await results.waitFor(2, 'failed');
  assert.match(r.error ?? '', /TooManyContainersError: .*yields 20 containers.*at most 5 \(MAX_CONTAINERS_PER_APP\)/);
  assert.is(appContainers(rt, app).length, 2);
  results.stop();
});

test('replaced images are removed after an apply; the current and the previous one stay, and images never used are left alone', async () => {
  const app = `gc-${suffix()}`;
  const host = `h-${suffix()}`;
  const rt = runtime();
  rt.images.set('other:1', 'sha256:other');
  const results = collectResults(nc, app);
  await startWorker(host, [app], rt);
  for (const [rev, img] of [
    [1, 'img:1'],
    [2, 'img:2'],
  ] as const) {
    await publishApp(bus, envelope(app, rev, rev === 1 ? 'create' : 'update', { docker_image: img }));
    await results.waitFor(rev, 'applied');
  }
  assert.ok(rt.images.has('img:1'), 'the previous image is kept for a rollback');
  await publishApp(bus, envelope(app, 3, 'update', { docker_image: 'img:3' }));
  await results.waitFor(3, 'applied');
  await waitFor('img:1 removed', () => !rt.images.has('img:1'), 5_000);
  assert.ok(rt.images.has('img:2') && rt.images.has('img:3'), 'current and previous kept');
  assert.ok(rt.images.has('other:1'), 'an image no app was seen using is not touched');
  results.stop();
});

test('a repair of many containers is summed up within what a heartbeat carries', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `created web-${i + 1}: missing`);
  const s = summarise(lines, 1_000);
  assert.ok(s.length <= 1_000, `${s.length} characters`);
  assert.match(s, /^created web-1: missing; created web-2: missing; .*; \.\.\. \(\d+ more\)$/);
  assert.is(summarise(['a', 'b'], 1_000), 'a; b');
  assert.ok(summarise(['x'.repeat(5_000)], 1_000).length <= 1_000);
  heartbeatSchema.shape.apps.element.shape.last_repair.parse({ at: new Date().toISOString(), what: s });
});

test.run();
