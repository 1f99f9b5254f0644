import { jetstreamManager } from '@nats-io/jetstream';
import { consumerName } from '@nebula/bus-auth';
import { MESSAGE_VERSION, streams, WAVE_MESSAGE_VERSION } from '@nebula/contracts';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, type Worker, type WorkerOptions } from '../src/worker.ts';
import { collectResults, createStreams, envelope, FAST_WORKER, log, publishApp, publishRaw, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * An app message of a newer schema version than the worker's (a control plane upgraded first, as it
 * should be): signed by the control plane, so past the gate, but never applied. The worker says
 * "upgrade the worker" in a failed result when it can tell which revision it is, counts it, terminates
 * it, and goes on with the next message it understands. Real nats-server, in-memory runtime.
 */
let nats: TestNatsServer;
let bus: TestBus;
const workers: Worker[] = [];
const FAST: Partial<WorkerOptions> = FAST_WORKER;
/** App messages are read in versions 1 and 2 (2: a wave of a rollout); 3 is newer. */
const NEWER = WAVE_MESSAGE_VERSION + 1;
const UPGRADE = `message schema version ${NEWER} is newer than this worker understands (${WAVE_MESSAGE_VERSION}): upgrade the worker`;

function runtime(): FakeRuntime {
  const rt = new FakeRuntime();
  for (const ref of ['img:1', 'img:2']) rt.registry.set(ref, `sha256:${ref.replace(':', '')}`);
  return rt;
}

async function startWorker(hostId: string, apps: string[], rt: FakeRuntime): Promise<{ w: Worker; registry: Registry }> {
  const host = await bus.host(hostId, apps, FAST);
  const registry = new Registry();
  const w = createWorker({ hostId, apps, ...host, registry, runtime: rt, hostFacts: { cores: 2, memory_mb: 2048 }, log, options: FAST });
  workers.push(w);
  await w.start();
  return { w, registry };
}

/** A revision as a newer control plane might write it: version 3, and a config this worker cannot read. */
function newer(app: string, revision: number): string {
  return JSON.stringify({ ...envelope(app, revision, 'update', { docker_image: 'img:2' }), v: NEWER, config: { image: { ref: 'img:2' } } });
}

const specs = (rt: FakeRuntime, app: string) => [...rt.containers.values()].filter((c) => c.spec.labels[LABELS.app] === app).map((c) => c.spec);
const newerMetric = async (registry: Registry) => /nebula_worker_messages_rejected_total\{reason="newer_version"\} (\d+)/.exec(await registry.metrics())?.[1];

/** The consumer has nothing in hand and nothing left: the message was terminated, not nak'd for another try. */
async function settled(hostId: string, app: string) {
  const info = await (await jetstreamManager(bus.admin)).consumers.info(streams.apps.name, consumerName(hostId, app));
  return info.num_ack_pending === 0 && info.num_pending === 0 ? info : undefined;
}

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  await createStreams(bus.admin);
});

test.after(async () => {
  for (const w of workers) await w.stop();
  await bus.close();
  await nats.cleanup();
});

test('a revision of a newer schema version is reported failed ("upgrade the worker"), counted, terminated, not applied; the next one is applied', async () => {
  const app = `ver-${suffix()}`;
  const hostId = 'h-ver';
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await results.subscribed;
  const { w, registry } = await startWorker(hostId, [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  await results.waitFor(1, 'applied');

  await publishRaw(bus, app, newer(app, 2));
  const failed = await results.waitFor(2, 'failed');
  assert.match(failed.error ?? '', UPGRADE);
  assert.is(failed.v, MESSAGE_VERSION, 'the result itself is of the version this worker writes');
  assert.equal(
    specs(rt, app).map((c) => c.image),
    ['img:1'],
    'not applied',
  );
  assert.equal(w.applied()[app], { incarnation: 1, revision: 1 });
  const info = await waitFor('the message terminated', () => settled(hostId, app));
  assert.is(info.num_redelivered, 0, 'delivered once');
  assert.is(w.rejected().newer_version, 1);
  assert.is(w.rejected().signature, 0);
  assert.is(await newerMetric(registry), '1');

  await publishApp(bus, envelope(app, 3, 'update', { docker_image: 'img:2' }));
  await results.waitFor(3, 'applied');
  assert.equal(
    specs(rt, app).map((c) => c.image),
    ['img:2'],
  );
  assert.is(w.state, 'running');
  assert.equal(
    results.all.map((r) => [r.revision, r.status]),
    [
      [1, 'applied'],
      [2, 'failed'],
      [3, 'applied'],
    ],
  );
  results.stop();
});

test('a version 2 message (a wave of a rollout) is understood and applied by a host of its wave', async () => {
  const app = `ver-wave-${suffix()}`;
  const hostId = 'h-ver-wave';
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await results.subscribed;
  const { w } = await startWorker(hostId, [app], rt);
  const m = envelope(app, 1, 'create', { docker_image: 'img:1' });
  await publishApp(bus, { ...m, v: WAVE_MESSAGE_VERSION, wave: { step: 1, hosts: [hostId], base: null } });
  const r = await results.waitFor(1);
  assert.is(r.status, 'applied', r.error ?? '');
  assert.equal(w.rejected(), { signature: 0, newer_version: 0 });
  results.stop();
});

test('one of a newer version that does not even say which revision it is: no result, counted, terminated; the next one is applied', async () => {
  const app = `ver-odd-${suffix()}`;
  const hostId = 'h-ver-odd';
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await results.subscribed;
  const { w, registry } = await startWorker(hostId, [app], rt);
  await publishRaw(bus, app, JSON.stringify({ v: NEWER, target: { app, rev: { n: 1 } }, op: 'apply' }));
  await waitFor('counted', () => w.rejected().newer_version === 1);
  await waitFor('the message terminated', () => settled(hostId, app));
  assert.equal(results.all, [], 'nothing to report it on');
  assert.is(await newerMetric(registry), '1');
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  await results.waitFor(1, 'applied');
  assert.is(specs(rt, app).length, 1);
  results.stop();
});

test('a worker that starts with a newer-version revision as its newest starts, leaves the containers as they are and reports it', async () => {
  const app = `ver-adopt-${suffix()}`;
  const hostId = 'h-ver-adopt';
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await results.subscribed;
  const first = await startWorker(hostId, [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  await results.waitFor(1, 'applied');
  await first.w.stop();
  const before = rt.all().map((c) => c.id);

  // The control plane, upgraded meanwhile, wrote revision 2 in its new version.
  await publishRaw(bus, app, newer(app, 2));
  const { w } = await startWorker(hostId, [app], rt);
  assert.is(w.state, 'running');
  const failed = await results.waitFor(2, 'failed');
  assert.match(failed.error ?? '', UPGRADE);
  assert.equal(
    rt.all().map((c) => c.id),
    before,
    'containers untouched',
  );
  await waitFor('the message terminated', () => settled(hostId, app));
  assert.is(w.rejected().newer_version, 1, 'counted once, though read at adoption and delivered');
  results.stop();
});

test.run();
