import { jetstreamManager } from '@nats-io/jetstream';
import { createServer, createUser } from '@nats-io/nkeys';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { consumerName, SIGNATURE_HEADER, verifyMessage } from '@nebula/bus-auth';
import { heartbeatSchema, streams, subjects } from '@nebula/contracts';
import { decode } from '@nebula/messaging';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, type Worker, type WorkerOptions } from '../src/worker.ts';
import { collectResults, createStreams, envelope, log, publishApp, startTestBus, suffix, type TestBus, type TestHost } from './helpers.ts';

/**
 * The worker's side of the bus rules, with a real nats-server in operator mode: only app messages
 * signed by the control plane key it pinned are applied; its results and heartbeats carry its own
 * signature; a consumer that disappears is asked of the control plane again, never created.
 */
let nats: TestNatsServer;
let bus: TestBus;
let admin: NatsConnection;
const workers: Worker[] = [];
const extra: NatsConnection[] = [];
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

async function startWorker(hostId: string, apps: string[], rt: FakeRuntime): Promise<{ w: Worker; host: TestHost; registry: Registry }> {
  const host = await bus.host(hostId, apps, FAST);
  const registry = new Registry();
  const w = createWorker({ hostId, apps, ...host, registry, runtime: rt, hostFacts: { cores: 2, memory_mb: 2048 }, log, options: FAST });
  workers.push(w);
  await w.start();
  return { w, host, registry };
}

const appContainers = (rt: FakeRuntime, app: string) => rt.all().filter((c) => c.labels[LABELS.app] === app);
const specs = (rt: FakeRuntime, app: string) => [...rt.containers.values()].filter((c) => c.spec.labels[LABELS.app] === app).map((c) => c.spec);
const rejectedMetric = async (registry: Registry) => /nebula_worker_messages_rejected_total\{reason="signature"\} (\d+)/.exec(await registry.metrics())?.[1];

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  admin = bus.admin;
  await createStreams(admin);
});

test.after(async () => {
  for (const w of workers) await w.stop();
  for (const c of extra) await c.close().catch(() => undefined);
  await bus.close();
  await nats.cleanup();
});

test('an unsigned app message and one signed by another key are not applied nor reported; a signed one is', async () => {
  const app = `sig-${suffix()}`;
  const rt = runtime();
  const results = collectResults(admin, app);
  await results.subscribed;
  const { w, registry } = await startWorker('h-sig', [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', env_vars: { V: 'unsigned' } }), { key: null });
  await publishApp(bus, envelope(app, 2, 'create', { docker_image: 'img:1', env_vars: { V: 'forged' } }), { key: createServer() });
  await publishApp(bus, envelope(app, 3, 'create', { docker_image: 'img:1', env_vars: { V: 'signed' } }));
  assert.is((await results.waitFor(3)).status, 'applied');
  assert.equal(
    specs(rt, app).map((c) => c.env),
    [{ V: 'signed' }],
  );
  assert.equal(
    results.all.map((r) => [r.revision, r.status]),
    [[3, 'applied']],
    'no result for the refused ones',
  );
  assert.is(rt.calls.filter((c) => c.op === 'create').length, 1, 'one container made, for revision 3 only');
  assert.is(w.rejected().signature, 2);
  assert.is(await rejectedMetric(registry), '2', 'counted in the metric');
  // Terminated: not delivered again after the ack wait.
  const info = await (await jetstreamManager(admin)).consumers.info(streams.apps.name, consumerName('h-sig', app));
  assert.is(info.num_ack_pending, 0);
  results.stop();
});

test("a message a host lands on apps.<app> with a reply subject (the server's PubAck) is not applied", async () => {
  const app = `reply-${suffix()}`;
  const rt = runtime();
  const results = collectResults(admin, app);
  await results.subscribed;
  const { w, registry } = await startWorker('h-reply', [app], rt);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  await results.waitFor(1, 'applied');
  const before = appContainers(rt, app).map((c) => c.id);
  // Another host (or this one's stolen credential): it may not publish on apps.*, but it can make
  // the server answer its heartbeat's publish there.
  const other = await connect(nats.connectOptions(await nats.hostCreds('h-evil', [])));
  extra.push(other);
  const jsm = await jetstreamManager(admin);
  const last = async () => (await jsm.streams.info(streams.apps.name, { subjects_filter: subjects.app(app) })).state.last_seq;
  const seqBefore = await last();
  other.publish(subjects.heartbeat('h-evil'), '{}', { reply: subjects.app(app) });
  await other.flush();
  await waitFor('the PubAck stored on the app subject', async () => (await last()) > seqBefore);
  await waitFor('refused', () => w.rejected().signature === 1);
  assert.equal(
    appContainers(rt, app).map((c) => c.id),
    before,
    'containers untouched',
  );
  assert.equal(w.applied()[app], { incarnation: 1, revision: 1 });
  assert.equal(
    results.all.map((r) => [r.revision, r.status]),
    [[1, 'applied']],
  );
  assert.is(await rejectedMetric(registry), '1');
  // The revision after it is applied as usual.
  await publishApp(bus, envelope(app, 2, 'update', { docker_image: 'img:2' }));
  assert.is((await results.waitFor(2)).status, 'applied');
  results.stop();
});

test("results and heartbeats carry the host's signature", async () => {
  const app = `signed-${suffix()}`;
  const rt = runtime();
  const hostId = 'h-signs';
  const { host } = await startWorker(hostId, [app], rt);
  // Subscribed once the host's key is known (its heartbeats keep coming).
  const heartbeats: Array<{ ok: boolean; okOther: boolean }> = [];
  const other = createUser().getPublicKey();
  const sub = admin.subscribe(subjects.heartbeat(hostId), {
    callback: (_e, m) => {
      decode(heartbeatSchema, m.data, m.subject);
      const sig = m.headers?.get(SIGNATURE_HEADER);
      heartbeats.push({ ok: verifyMessage(host.publicKey, m.subject, m.data, sig), okOther: verifyMessage(other, m.subject, m.data, sig) });
    },
  });
  const results = collectResults(admin, app, { [hostId]: host.publicKey });
  await results.subscribed;
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  // One at a time: a second revision already waiting would make the first superseded, not applied.
  await results.waitFor(1, 'applied');
  await publishApp(bus, envelope(app, 2, 'update', { docker_image: 'img:404' }));
  await results.waitFor(2, 'failed');
  await waitFor('two heartbeats', () => heartbeats.length >= 2);
  sub.unsubscribe();
  assert.ok(results.verified.length >= 2);
  assert.ok(
    results.verified.every((v) => v),
    'every result verifies with the host key',
  );
  assert.ok(heartbeats.every((h) => h.ok && !h.okOther));
  results.stop();
});

test('a consumer deleted while the worker runs is asked of the control plane again; the worker goes on', async () => {
  const app = `gone-${suffix()}`;
  const rt = runtime();
  const results = collectResults(admin, app);
  await results.subscribed;
  const { host } = await startWorker('h-gone', [app], rt);
  // The runner binds its consumer in its loop, which may first run just after start() resolves.
  await waitFor('the consumer asked for at start', () => host.provisions() >= 1);
  assert.is(host.provisions(), 1, 'asked once at start: the consumer did not exist yet');
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  await results.waitFor(1, 'applied');
  const jsm = await jetstreamManager(admin);
  await jsm.consumers.delete(streams.apps.name, consumerName('h-gone', app));
  await waitFor('the worker to ask for it again', () => host.provisions() >= 2);
  // Counted when asked; made a moment later.
  await waitFor('the consumer made again', () =>
    jsm.consumers.info(streams.apps.name, consumerName('h-gone', app)).then(
      () => true,
      () => undefined,
    ),
  );
  await publishApp(bus, envelope(app, 2, 'update', { docker_image: 'img:2' }));
  assert.is((await results.waitFor(2)).status, 'applied');
  assert.equal(
    specs(rt, app).map((c) => c.image),
    ['img:2'],
  );
  results.stop();
});

test.run();
