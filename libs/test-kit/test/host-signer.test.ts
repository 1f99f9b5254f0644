import { createUser } from '@nats-io/nkeys';
import { signMessage, verifyMessage } from '@nebula/bus-auth';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fastKeyPair, hostSigner } from '../src/index.ts';

test("hostSigner makes bus-auth's signature, byte for byte", () => {
  const kp = createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  const sign = hostSigner(seed);
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 300 }), (subject, data) => {
      const sig = sign(subject, data);
      assert.is(sig, signMessage(kp, subject, data));
      assert.ok(verifyMessage(kp.getPublicKey(), subject, data, sig));
    }),
    { numRuns: 30 },
  );
});

test('fastKeyPair signs as the nkeys KeyPair of the same seed', () => {
  const kp = createUser();
  const fast = fastKeyPair(new TextDecoder().decode(kp.getSeed()));
  assert.is(fast.getPublicKey(), kp.getPublicKey());
  const data = new TextEncoder().encode('results.web.h1\n{}');
  assert.equal(fast.sign(data), kp.sign(data));
  assert.ok(fast.verify(data, kp.sign(data)));
  assert.ok(verifyMessage(kp.getPublicKey(), 'hosts.h1', data, signMessage(fast, 'hosts.h1', data)));
});

test.run();
