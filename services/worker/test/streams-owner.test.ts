import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { streams } from '@nebula/contracts';
import { ensureStreams } from '@nebula/messaging';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, type Worker } from '../src/worker.ts';
import { collectResults, envelope, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * The worker owns no stream (the API owns APPS, the notifier RESULTS and HOSTS): started before they
 * exist it waits, saying so, and it never creates them or changes their settings.
 */
let nats: TestNatsServer;
let nc: NatsConnection;
let bus: TestBus;
const workers: Worker[] = [];
const FAST = {
  heartbeatIntervalMs: 200,
  ackWaitMs: 2_000,
  fetchExpiresMs: 1_000,
  retryBaseMs: 50,
  retryMaxMs: 400,
  rollSettleMs: 0,
  settleMs: 300,
  pollMs: 5,
  healthCheckIntervalMs: 100,
};

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  nc = bus.admin;
});

test.after(async () => {
  for (const w of workers) await w.stop();
  await bus.close();
  await nats.cleanup();
});

test('a worker started before the streams exist waits for their owners and leaves their settings alone', async () => {
  const said: string[] = [];
  const spy = Object.create(log) as typeof log;
  spy.warn = ((obj: unknown, msg?: string) => void said.push(msg ?? String(obj))) as typeof log.warn;
  const app = `web-${suffix()}`;
  const rt = new FakeRuntime();
  rt.registry.set('img:1', 'sha256:img1');
  const w = createWorker({
    hostId: 'h1',
    apps: [app],
    ...(await bus.host('h1', [app], FAST)),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log: spy,
    options: FAST,
  });
  workers.push(w);
  let started = false;
  const starting = w.start().then(() => (started = true));

  await waitFor('the worker to say what it waits for', () => said.some((m) => m.includes('waiting for stream APPS')));
  assert.match(said.find((m) => m.includes('APPS')) ?? '', /the api creates it/);
  const jsm = await jetstreamManager(nc);
  assert.equal(await jsm.streams.names().next(), [], 'the worker created no stream');
  assert.is(started, false);
  assert.is(w.state, 'starting');

  // The owners create them; APPS with a setting of a newer API than this worker knows.
  await ensureStreams(jsm, ['results', 'hosts']);
  await jsm.streams.add({ name: streams.apps.name, subjects: [...streams.apps.subjects], max_msgs_per_subject: 7 });
  await starting;
  assert.is(w.state, 'running');
  assert.is((await jsm.streams.info(streams.apps.name)).config.max_msgs_per_subject, 7, 'APPS settings unchanged');
  assert.is((await jsm.streams.info(streams.results.name)).config.max_age, streams.results.max_age_ms * 1_000_000);

  const results = collectResults(nc, app);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  assert.is((await results.waitFor(1)).status, 'applied');
  results.stop();
});

test.run();
