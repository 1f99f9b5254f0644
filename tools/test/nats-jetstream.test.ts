import { randomBytes } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stackNatsOptions } from '../src/stack-bus.ts';

test("the stack's nats-server is the pinned version (tools/nats-server.sh)", async () => {
  const pinned = process.env.NEBULA_NATS_VERSION;
  assert.ok(pinned, 'NEBULA_NATS_VERSION is set by tools/env.sh: run tests through tools/node.sh');
  const nc = await connect(stackNatsOptions('admin'));
  try {
    assert.is(nc.info?.version, pinned, 'tools/stack.sh up replaces a server of another version');
  } finally {
    await nc.close();
  }
});

test("the stack's nats-server refuses an anonymous client", async () => {
  const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const anonymous = await connect({ servers: url, reconnect: false, timeout: 2000 }).then(
    async (c) => {
      await c.close();
      return 'connected';
    },
    () => 'refused',
  );
  assert.is(anonymous, 'refused');
});

test("JetStream on the stack's nats-server, as its admin user: publish, fetch, ack, no redelivery", async () => {
  const nc = await connect(stackNatsOptions('admin'));
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const id = randomBytes(4).toString('hex');
  const stream = `TEST_${id}`;
  try {
    await jsm.streams.add({ name: stream, subjects: [`test.${id}.>`] });
    await jsm.consumers.add(stream, {
      durable_name: 'c1',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: 1_000_000_000, // 1 s, in nanoseconds: an unacked message would come back quickly
    });
    const ack = await js.publish(`test.${id}.a`, JSON.stringify({ n: 1 }), { msgID: 'm1' });
    assert.is(ack.duplicate, false);
    const dup = await js.publish(`test.${id}.a`, JSON.stringify({ n: 1 }), { msgID: 'm1' });
    assert.is(dup.duplicate, true, 'same message id is dropped');

    const consumer = await js.consumers.get(stream, 'c1');
    const first = await consumer.next({ expires: 2000 });
    assert.ok(first, 'message delivered');
    assert.equal(first.json(), { n: 1 });
    await first.ackAck();

    await new Promise((r) => setTimeout(r, 1500)); // past ack_wait
    const again = await consumer.next({ expires: 1000 });
    assert.is(again, null, 'an acked message is not redelivered');
    const info = await consumer.info();
    assert.is(info.num_pending, 0);
    assert.is(info.num_ack_pending, 0);
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
});

test.run();
