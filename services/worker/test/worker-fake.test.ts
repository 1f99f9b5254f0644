import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { consumerName } from '@nebula/bus-auth';
import { heartbeatSchema, streams, subjects } from '@nebula/contracts';
import { decode } from '@nebula/messaging';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, type Worker, type WorkerOptions } from '../src/worker.ts';
import { collectResults, createStreams, envelope, log, publishApp, publishRaw, startTestBus, suffix, type TestBus } from './helpers.ts';

/** The worker's consuming, latest-wins and reporting, with a real nats-server and the in-memory runtime. */
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
};

function runtime(): FakeRuntime {
  const rt = new FakeRuntime();
  for (const ref of ['img:1', 'img:2']) rt.registry.set(ref, `sha256:${ref.replace(':', '')}`);
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

const appContainers = (rt: FakeRuntime, app: string) => rt.all().filter((c) => c.labels[LABELS.app] === app);
const envOf = (rt: FakeRuntime, name: string) => [...rt.containers.values()].find((c) => c.spec.name === name)?.spec.env;

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

test('a revision is applied, reported once, and shown in the heartbeat', async () => {
  const app = `web-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  const w = await startWorker('h1', [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', containers_per: { server: 2 }, env_vars: { A: '1' } }));
  const r = await results.waitFor(1);
  assert.is(r.status, 'applied');
  assert.is(r.host, 'h1');
  assert.equal(
    r.containers.map((c) => [c.name, c.state]),
    [
      [`${app}-1`, 'running'],
      [`${app}-2`, 'running'],
    ],
  );
  assert.is(r.image_digest, 'img@sha256:img1');
  const jsm = await jetstreamManager(nc);
  const hb = await waitFor('a heartbeat with the revision', async () => {
    const m = await jsm.streams.getMessage(streams.hosts.name, { last_by_subj: subjects.heartbeat('h1') });
    const h = m && decode(heartbeatSchema, m.data);
    return h && h.apps[0]?.revision === 1 ? h : undefined;
  });
  assert.is(hb.apps[0]?.containers.length, 2);
  // Consumer settings: explicit acks, starting at the latest revision, forgotten after inactivity.
  const info = await jsm.consumers.info(streams.apps.name, consumerName('h1', app));
  assert.is(info.config.filter_subject, `apps.${app}`);
  assert.is(info.config.deliver_policy, 'last_per_subject');
  assert.ok((info.config.inactive_threshold ?? 0) > 0);
  await w.stop();
  assert.is(results.all.length, 1);
  results.stop();
});

test('a backlog of five revisions is applied as one; the four older ones are reported superseded', async () => {
  const app = `api-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  let w = await startWorker('h1', [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', env_vars: { V: '1' } }));
  await results.waitFor(1, 'applied');
  await w.stop();
  for (let rev = 2; rev <= 6; rev++) await publishApp(bus, envelope(app, rev, 'update', { docker_image: 'img:1', env_vars: { V: String(rev) } }));
  const creates = () => rt.calls.filter((c) => c.op === 'create').length;
  const before = creates();
  w = await startWorker('h1', [app], rt);
  await results.waitFor(6, 'applied');
  await waitFor('four superseded', () => results.all.filter((r) => r.status === 'superseded').length === 4);
  assert.equal(
    results.all
      .filter((r) => r.status === 'superseded')
      .map((r) => r.revision)
      .sort(),
    [2, 3, 4, 5],
  );
  assert.equal(envOf(rt, `${app}-1`), { V: '6' });
  assert.is(creates() - before, 1, 'one container made, for revision 6 only');
  results.stop();
});

test('an invalid message is terminated with a failed result; the next one is applied', async () => {
  const app = `bad-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  await startWorker('h1', [app], rt);
  const good = envelope(app, 2, 'create', { docker_image: 'img:1' });
  await publishRaw(bus, app, JSON.stringify({ ...envelope(app, 1, 'create', { docker_image: 'img:1' }), config: { docker_image: 42 } }));
  const failed = await results.waitFor(1, 'failed');
  assert.match(failed.error ?? '', /InvalidMessageError/);
  await publishRaw(bus, app, 'not json');
  await publishApp(bus, good);
  await results.waitFor(2, 'applied');
  assert.is(appContainers(rt, app).length, 1);
  results.stop();
});

test('an unreachable registry is reported failed once and retried until it answers; an unknown image fails without touching the app', async () => {
  const app = `retry-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  await startWorker('h1', [app], rt);
  rt.registryDown = true;
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  await waitFor('three pull attempts', () => rt.pullAttempts >= 3);
  assert.equal(
    results.all.map((r) => r.status),
    ['failed'],
    'one failed result while retrying',
  );
  assert.match(results.all[0]!.error ?? '', /RegistryUnavailableError.*\(retrying\)/);
  rt.registryDown = false;
  await results.waitFor(1, 'applied');
  await publishApp(bus, envelope(app, 2, 'update', { docker_image: 'img:404' }));
  const r = await results.waitFor(2, 'failed');
  assert.match(r.error ?? '', /ImageNotFoundError/);
  assert.equal(
    r.containers.map((c) => c.state),
    ['running'],
    'the old container keeps serving',
  );
  results.stop();
});

test('a permanent failure is terminated for good: not delivered again after the ack wait', async () => {
  const app = `term-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  await startWorker('h1', [app], rt, { ackWaitMs: 1_000 });
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:404' }));
  assert.match((await results.waitFor(1, 'failed')).error ?? '', /ImageNotFoundError/);
  await new Promise((r) => setTimeout(r, 2_500));
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.info(streams.apps.name, consumerName('h1', app));
  assert.is(info.num_redelivered, 0, 'delivered again');
  assert.is(info.num_ack_pending, 0);
  assert.is(results.all.length, 1, 'one failed result');
  assert.is(rt.pullAttempts, 1);
  results.stop();
});

test('an engine that does not answer is retried; the other app on the host is not held up', async () => {
  const [a, b] = [`eng-${suffix()}`, `eng2-${suffix()}`];
  const rt = runtime();
  const ra = collectResults(nc, a);
  const rb = collectResults(nc, b);
  await startWorker('h1', [a, b], rt);
  rt.engineDown = true;
  await publishApp(bus, envelope(a, 1, 'create', { docker_image: 'img:1' }));
  const jsm = await jetstreamManager(nc);
  await waitFor('the revision to be delivered again', async () => (await jsm.consumers.info(streams.apps.name, consumerName('h1', a))).num_redelivered >= 1);
  assert.equal(
    ra.all.map((r) => [r.status, /EngineUnavailableError/.test(r.error ?? '')]),
    [['failed', true]],
    'one failed result while retrying',
  );
  rt.engineDown = false;
  await publishApp(bus, envelope(b, 1, 'create', { docker_image: 'img:1' }));
  await ra.waitFor(1, 'applied');
  assert.is((await rb.waitFor(1)).status, 'applied');
  ra.stop();
  rb.stop();
});

test('at start: matching containers adopted, stale ones replaced, unserved apps removed; other hosts untouched', async () => {
  const [a, b, gone] = [`a-${suffix()}`, `b-${suffix()}`, `gone-${suffix()}`];
  const rt = runtime();
  let w = await startWorker('h1', [a, b, gone], rt);
  const rb = collectResults(nc, b);
  await publishApp(bus, envelope(a, 1, 'create', { docker_image: 'img:1', containers_per: { server: 2 } }));
  await publishApp(bus, envelope(b, 1, 'create', { docker_image: 'img:1' }));
  await publishApp(bus, envelope(gone, 1, 'create', { docker_image: 'img:1' }));
  await rb.waitFor(1, 'applied');
  await waitFor('all running', () => rt.all().length === 4);
  const other = await startWorker('h2', [], rt); // another host on the same engine, serving nothing
  await other.stop();
  assert.is(rt.all().length, 4, "a worker never removes another host's containers");
  await w.stop();
  const keep = appContainers(rt, a)
    .map((c) => c.id)
    .sort();
  // While the worker is away: b changes, and one container of a disappears.
  await publishApp(bus, envelope(b, 2, 'update', { docker_image: 'img:1', env_vars: { NEW: '1' } }));
  await rt.remove(appContainers(rt, a).find((c) => c.name === `${a}-2`)!.id);
  w = await startWorker('h1', [a, b], rt);
  assert.equal(appContainers(rt, gone), [], 'unserved app removed');
  assert.is(appContainers(rt, a).length, 2);
  assert.ok(
    appContainers(rt, a).some((c) => c.id === keep[0] || c.id === keep[1]),
    'matching container kept',
  );
  assert.equal(envOf(rt, `${b}-1`), { NEW: '1' });
  await rb.waitFor(2, 'applied');
  assert.equal(w.applied()[b], { incarnation: 1, revision: 2 });
  rb.stop();
});

test('an unhealthy container is restarted', async () => {
  const app = `sick-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  await startWorker('h1', [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', healthcheck: { test: ['CMD', 'true'] } }));
  await results.waitFor(1, 'applied');
  const c = [...rt.containers.values()].find((x) => x.spec.name === `${app}-1`)!;
  c.health = 'unhealthy';
  await waitFor('restarted', () => rt.calls.some((x) => x.op === 'restart' && x.id === c.id));
  assert.is(c.health, 'healthy');
  results.stop();
});

test('a nats-server restart does not stop the consumer loops', async () => {
  const app = `nats-${suffix()}`;
  const rt = runtime();
  await startWorker('h1', [app], rt);
  await nats.stop();
  await nats.start();
  const results = collectResults(nc, app);
  await waitFor('the client to reconnect', () => !nc.isClosed() && nc.info !== undefined);
  await waitFor('the revision to be published', () => publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' })).then(() => true), 15_000, 250);
  assert.is((await results.waitFor(1, undefined, 20_000)).status, 'applied');
  assert.is(appContainers(rt, app).length, 1);
  results.stop();
});

test.run();
