import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { appMessageSchema, streams } from '@nebula/contracts';
import { startNatsServer } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decode, ensureStream, ensureStreams, InvalidMessageError } from '../src/index.ts';

test('streams are created with the shared settings, and re-ensuring is idempotent or an update', async () => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
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
  } finally {
    await nc.close();
    await server.cleanup();
  }
});

test('decode parses with the schema and names what is wrong', () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  assert.throws(() => decode(appMessageSchema, bytes('{nope'), 'apps.web'), (e: Error) => e instanceof InvalidMessageError && /not JSON/.test(e.message));
  assert.throws(() => decode(appMessageSchema, bytes('{"v":1}'), 'apps.web'), (e: Error) => /app:/.test(e.message));
});

test.run();
