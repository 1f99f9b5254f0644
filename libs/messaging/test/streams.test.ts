import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { appMessageSchema, streams } from '@nebula/contracts';
import { startNatsServer } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decode, ensureStream, ensureStreams, InvalidMessageError, waitForStream } from '../src/index.ts';

test('streams are created with the shared settings, and re-ensuring is idempotent or an update', async () => {
  const server = await startNatsServer();
  const nc = await connect(server.connectOptions('admin'));
  try {
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, ['apps', 'results', 'hosts']);
    await ensureStreams(jsm, ['apps', 'results', 'hosts']);
    const apps = await jsm.streams.info('APPS');
    assert.equal(apps.config.subjects, ['apps.>']);
    assert.is(apps.config.max_msgs_per_subject, streams.apps.max_msgs_per_subject);
    assert.is(apps.config.duplicate_window, streams.apps.duplicate_window_ms * 1_000_000);
    // An older deployment's settings are brought up to date.
    await jsm.streams.update('APPS', { max_msgs_per_subject: 3 });
    const updated = await ensureStream(jsm, 'apps');
    assert.is(updated.config.max_msgs_per_subject, streams.apps.max_msgs_per_subject);
    // File-backed, every limit explicit.
    for (const key of ['apps', 'results', 'hosts'] as const) {
      const info = await jsm.streams.info(streams[key].name);
      assert.is(info.config.storage, 'file', key);
      assert.is(info.config.max_bytes, streams[key].max_bytes, key);
      assert.is(info.config.max_msgs, streams[key].max_msgs, key);
      assert.is(info.config.max_age, streams[key].max_age_ms * 1_000_000, key);
      assert.is(info.config.discard, streams[key].discard, key);
    }
  } finally {
    await nc.close();
    await server.cleanup();
  }
});

test('APPS refuses new messages only when full: per subject the oldest still make room', async () => {
  const server = await startNatsServer();
  const nc = await connect(server.connectOptions('admin'));
  try {
    const jsm = await jetstreamManager(nc);
    await ensureStream(jsm, 'apps');
    const js = jetstream(nc);
    const n = streams.apps.max_msgs_per_subject + 3;
    for (let i = 1; i <= n; i++) await js.publish('apps.web', JSON.stringify({ i }));
    const info = await jsm.streams.info('APPS');
    assert.is(info.state.messages, streams.apps.max_msgs_per_subject);
    assert.is(info.state.last_seq, n);
  } finally {
    await nc.close();
    await server.cleanup();
  }
});

test('waitForStream waits for the owner to create the stream, and neither creates nor changes it', async () => {
  const server = await startNatsServer();
  const nc = await connect(server.connectOptions('admin'));
  try {
    const jsm = await jetstreamManager(nc);
    const said: string[] = [];
    let resolved = false;
    const waiting = waitForStream(jsm, 'results', { retryMs: 50, onWaiting: (m) => said.push(m) }).then((info) => {
      resolved = true;
      return info;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.is(resolved, false);
    assert.equal(said, ['waiting for stream RESULTS: it does not exist yet; the notifier creates it']);
    assert.equal(await jsm.streams.names().next(), [], 'nothing was created');
    // The owner creates it, with settings of its own (a newer version, say): they stay as they are.
    await jsm.streams.add({ name: 'RESULTS', subjects: ['results.>'], max_age: 60_000_000_000 });
    const info = await waiting;
    assert.is(info.config.max_age, 60_000_000_000);
    assert.is((await jsm.streams.info('RESULTS')).config.max_age, 60_000_000_000);
    // Stopping the wait.
    const ac = new AbortController();
    const never = waitForStream(jsm, 'hosts', { retryMs: 50, signal: ac.signal });
    ac.abort(new Error('stopping'));
    await never.then(
      () => assert.unreachable('resolved'),
      (err: Error) => assert.is(err.message, 'stopping'),
    );
  } finally {
    await nc.close();
    await server.cleanup();
  }
});

test('decode parses with the schema and names what is wrong', () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  assert.throws(
    () => decode(appMessageSchema, bytes('{nope'), 'apps.web'),
    (e: Error) => e instanceof InvalidMessageError && /not JSON/.test(e.message),
  );
  assert.throws(
    () => decode(appMessageSchema, bytes('{"v":1}'), 'apps.web'),
    (e: Error) => /app:/.test(e.message),
  );
});

test.run();
