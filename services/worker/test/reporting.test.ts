import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { connect } from '@nats-io/transport-node';
import { heartbeatSchema, resultSchema, streams, subjects } from '@nebula/contracts';
import { decode, ensureStream } from '@nebula/messaging';
import { startNatsServer } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildResult, publishResult, resultMessageId } from '../src/reporting.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker } from '../src/worker.ts';
import { log, startTestBus, suffix } from './helpers.ts';

/** Results and heartbeats as they reach the streams, through a real nats-server. */
const nats = await startNatsServer();
const bus = await startTestBus(nats);
const nc = await connect(nats.connectOptions('admin'));
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
await ensureStream(jsm, 'apps'); // the API's: a worker waits for it
await ensureStream(jsm, 'results');
await ensureStream(jsm, 'hosts');
const message = { app: `web-${suffix()}`, incarnation: 1, revision: 3, rollout_id: '0b9c6f6e-2f4e-4c8e-9f0a-2a1c3d4e5f60', action: 'update' as const };
const tick = () => new Promise((r) => setTimeout(r, 2));

async function stored(subject: string) {
  const info = await jsm.streams.info(streams.results.name, { subjects_filter: subject });
  return info.state.subjects ? (info.state.subjects[subject] ?? 0) : 0;
}

test('two failures of one revision with different causes, and a later one with the first cause again, all reach the stream', async () => {
  const host = `h-${suffix()}`;
  const subject = `results.${message.app}.${host}`;
  const first = buildResult({ message, host, status: 'failed', error: 'pull: registry unreachable (retrying)' });
  await tick();
  const second = buildResult({ message, host, status: 'failed', error: 'create: port 8080 taken' });
  await tick();
  const third = buildResult({ message, host, status: 'failed', error: 'pull: registry unreachable (retrying)' });
  const hostKey = createUser();
  for (const r of [first, second, third]) await publishResult(js, hostKey, r);
  await publishResult(js, hostKey, second); // the client sending one publish again: the server drops it
  assert.is(await stored(subject), 3);
  assert.not.equal(resultMessageId(first), resultMessageId(second));
  assert.not.equal(resultMessageId(first), resultMessageId(third), 'a later attempt is its own message');
  const last = await jsm.streams.getMessage(streams.results.name, { last_by_subj: subject });
  assert.is(decode(resultSchema, last!.data, subject).error, 'pull: registry unreachable (retrying)');
});

test("a worker's heartbeats carry one instance per worker; two workers of one host id send two", async () => {
  const hostId = `twin-${suffix()}`;
  const make = async () =>
    createWorker({
      hostId,
      apps: [],
      ...(await bus.host(hostId, [])),
      runtime: new FakeRuntime(),
      hostFacts: { cores: 1, memory_mb: 512 },
      log,
      options: { heartbeatIntervalMs: 60_000 },
    });
  // The HOSTS stream keeps one heartbeat per host: listen to the subject itself to see each one.
  const instances: string[] = [];
  const sub = nc.subscribe(subjects.heartbeat(hostId), { callback: (_err, m) => void instances.push(decode(heartbeatSchema, m.data, m.subject).instance!) });
  const [a, b] = [await make(), await make()];
  await a.start(); // each start sends a first heartbeat
  await b.start();
  await a.heartbeat();
  await Promise.all([a.stop(), b.stop()]);
  await nc.flush();
  sub.unsubscribe();
  assert.is(instances.length, 3);
  assert.is(instances[0], instances[2]);
  assert.is.not(instances[0], instances[1]);
});

test.after(async () => {
  await nc.close();
  await bus.close();
  await nats.cleanup();
});

test.run();
