import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isMissedHeartbeats } from '../src/index.ts';

/**
 * A fetch that hears no idle heartbeat twice ends with nats.js's "heartbeats missed" error (a real
 * nats-server, frozen for the occasion: a busy second does the same, less predictably): the loops of
 * the worker and the notifier pull again at once on it instead of backing off, so they must
 * recognise it, and only it.
 */
test('a fetch that misses two idle heartbeats ends with missed heartbeats, recognised as such', async () => {
  const server = await startNatsServer();
  const nc = await connect(server.connectOptions('admin'));
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'PULL', subjects: ['pull.>'] });
    await jsm.consumers.add('PULL', { durable_name: 'slow', ack_policy: AckPolicy.Explicit });
    const js = jetstream(nc);
    const consumer = await js.consumers.get('PULL', 'slow');
    // Idle heartbeats every 500 ms: the fetch gives up after two are missed, long before it expires.
    const batch = await consumer.fetch({ max_messages: 1, expires: 10_000, idle_heartbeat: 500 });
    await nc.flush();
    server.freeze();
    let thrown: unknown = null;
    try {
      for await (const m of batch) m.ack();
    } catch (err) {
      thrown = err;
    } finally {
      server.thaw();
    }
    assert.ok(thrown !== null, 'the fetch ended with an error');
    assert.ok(isMissedHeartbeats(thrown), String(thrown));
    assert.not.ok(isMissedHeartbeats(new Error('heartbeats missed')), 'only the library error');
    assert.not.ok(isMissedHeartbeats(null));
  } finally {
    await nc.close();
    await server.cleanup();
  }
});

test.run();
