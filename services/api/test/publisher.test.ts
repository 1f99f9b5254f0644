import { jetstreamManager } from '@nats-io/jetstream';
import { createServer } from '@nats-io/nkeys';
import { connect, InvalidArgumentError, PermissionViolationError, RequestError, TimeoutError } from '@nats-io/transport-node';
import { keyFromSeed, SIGNATURE_HEADER, verifyMessage } from '@nebula/bus-auth';
import { streams } from '@nebula/contracts';
import { ensureStream } from '@nebula/messaging';
import { startNatsServer } from '@nebula/test-kit';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backoffMs } from '../src/db/outbox-relay.ts';
import { jetStreamPublisher, PublishError, permanentPublishFailure, publishedSize } from '../src/publisher.ts';

/** Which publish failures are permanent (dead letter) and which pass (retry), and the size NATS limits. */

test('permanent: permissions violation and max payload exceeded, also as the cause of another error', () => {
  const denied = new PermissionViolationError('Permissions Violation for Publish to "apps.x"', 'publish', 'apps.x');
  assert.match(permanentPublishFailure(denied) ?? '', /^permissions violation/);
  assert.match(permanentPublishFailure(new RequestError(denied.message, { cause: denied })) ?? '', /^permissions violation/);
  assert.match(permanentPublishFailure(InvalidArgumentError.format('payload', 'max_payload size exceeded')) ?? '', /^max payload exceeded/);
});

test('transient: timeouts, connection loss, anything unknown', () => {
  assert.is(permanentPublishFailure(new TimeoutError()), null);
  assert.is(permanentPublishFailure(new Error('connection closed')), null);
  assert.is(permanentPublishFailure(InvalidArgumentError.format('subject', 'is not valid')), null);
  assert.is(permanentPublishFailure('a string'), null);
  assert.is(permanentPublishFailure(undefined), null);
});

test('backoff: from the base, never above the maximum, never shrinking with more failures', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 100, max: 60_000 }), (failures, max) => {
      const d = backoffMs(failures, max);
      assert.ok(d >= Math.min(100, max) && d <= max);
      assert.ok(backoffMs(failures + 1, max) >= d);
    }),
  );
  assert.is(backoffMs(1, 5000), 100);
  assert.is(backoffMs(2, 5000), 200);
});

test('the size check matches what a real NATS refuses, and the publisher classifies it as permanent', async () => {
  const maxPayload = 4096;
  const server = await startNatsServer({ config: `max_payload: ${maxPayload}\n` });
  const nc = await connect(server.connectOptions('api'));
  try {
    assert.is(nc.info?.max_payload, maxPayload);
    await ensureStream(await jetstreamManager(nc), 'apps');
    const msgId = 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6';
    const fits = maxPayload - publishedSize(0, msgId);
    assert.is(publishedSize(fits, msgId), maxPayload);
    // What the relay publishes (message id and signature headers) at exactly max_payload goes through.
    const publisher = jetStreamPublisher(nc, keyFromSeed(server.keys.message_signing_seed));
    await publisher.publish('apps.fits', new Uint8Array(fits), msgId);
    const err = await publisher.publish('apps.over', new Uint8Array(fits + 1), `${msgId}-2`).then(
      () => assert.unreachable('published'),
      (e: unknown) => e,
    );
    assert.instance(err, PublishError);
    assert.is((err as PublishError).retryable, false);
    assert.match((err as Error).message, /max payload exceeded/);
  } finally {
    await nc.close();
    await server.cleanup();
  }
});

test('every app message the publisher sends carries the control plane signature over subject and body', async () => {
  const server = await startNatsServer();
  const nc = await connect(server.connectOptions('api'));
  const admin = await connect(server.connectOptions('admin'));
  try {
    const publisher = jetStreamPublisher(nc, keyFromSeed(server.keys.message_signing_seed));
    const body = new TextEncoder().encode('{"app":"web","revision":1}');
    await publisher.publish('apps.web', body, 'id-1');
    const m = await (await jetstreamManager(admin)).streams.getMessage(streams.apps.name, { last_by_subj: 'apps.web' });
    assert.ok(m);
    const sig = m.header?.get(SIGNATURE_HEADER);
    assert.ok(sig, 'the message has a signature header');
    assert.equal(m.header?.get('Nats-Msg-Id'), 'id-1');
    const controlPlaneKey = keyFromSeed(server.keys.message_signing_seed).getPublicKey();
    assert.ok(verifyMessage(controlPlaneKey, 'apps.web', m.data, sig), 'verifies against the control plane key');
    // Another key, another subject or another body: does not verify.
    assert.not.ok(verifyMessage(createServer().getPublicKey(), 'apps.web', m.data, sig));
    assert.not.ok(verifyMessage(controlPlaneKey, 'apps.db', m.data, sig));
    assert.not.ok(verifyMessage(controlPlaneKey, 'apps.web', new TextEncoder().encode('{"app":"web","revision":2}'), sig));
    // A message signed by another key is told apart as well.
    const forged = jetStreamPublisher(nc, createServer());
    await forged.publish('apps.web', body, 'id-2');
    const f = await (await jetstreamManager(admin)).streams.getMessage(streams.apps.name, { last_by_subj: 'apps.web' });
    assert.not.ok(verifyMessage(controlPlaneKey, 'apps.web', f?.data ?? new Uint8Array(), f?.header?.get(SIGNATURE_HEADER)));
  } finally {
    await nc.close();
    await admin.close();
    await server.cleanup();
  }
});

test.run();
