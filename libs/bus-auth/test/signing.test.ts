import { createServer, createUser, fromPublic } from '@nats-io/nkeys';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { keyFromSeed, messageSigner, publicKeyObject, signMessage, verifyMessage, verifyWithKey } from '../src/index.ts';

const enc = new TextEncoder();
/** nkeys' own (pure JS) ed25519 over the same bytes: what our OpenSSL signatures must equal. */
const nkeysSign = (seed: Uint8Array, subject: string, data: Uint8Array) =>
  Buffer.from(keyFromSeed(new TextDecoder().decode(seed)).sign(Buffer.concat([enc.encode(`${subject}\n`), data]))).toString('base64url');

test("the signatures are nkeys' own, byte for byte, and verify with nkeys", () => {
  for (const kp of [createUser(), createServer()]) {
    const sign = messageSigner(kp.getSeed());
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 300 }), (subject, data) => {
        const sig = sign(subject, data);
        assert.is(sig, nkeysSign(kp.getSeed(), subject, data));
        assert.is(signMessage(kp, subject, data), sig);
        assert.ok(verifyMessage(kp.getPublicKey(), subject, data, sig));
        assert.ok(fromPublic(kp.getPublicKey()).verify(Buffer.concat([enc.encode(`${subject}\n`), data]), Buffer.from(sig, 'base64url')));
      }),
      { numRuns: 20 },
    );
  }
});

test('any change of subject, body, key or signature fails; nothing throws', () => {
  const kp = createUser();
  const other = createUser();
  const key = publicKeyObject(kp.getPublicKey());
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.nat(), (subject, data, at) => {
      const sig = signMessage(kp, subject, data);
      const changed = Uint8Array.from(data);
      changed[at % data.length] = (changed[at % data.length] ?? 0) ^ 1;
      assert.not.ok(verifyWithKey(key, subject, changed, sig), 'body');
      assert.not.ok(verifyWithKey(key, `${subject}x`, data, sig), 'subject');
      assert.not.ok(verifyMessage(other.getPublicKey(), subject, data, sig), 'key');
      const bad = Buffer.from(sig, 'base64url');
      bad[at % 64] = (bad[at % 64] ?? 0) ^ 1;
      assert.not.ok(verifyMessage(kp.getPublicKey(), subject, data, bad.toString('base64url')), 'signature');
    }),
    { numRuns: 50 },
  );
  assert.not.ok(verifyMessage('not a key', 's', enc.encode('x'), 'y'));
  assert.not.ok(verifyMessage(kp.getPublicKey(), 's', enc.encode('x'), undefined));
  assert.throws(() => publicKeyObject('UNOTAKEY'));
});

test.run();
