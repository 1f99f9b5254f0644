import { createUser } from '@nats-io/nkeys';
import { signMessage, verifyMessage } from '@nebula/bus-auth';
import { hostSigner } from '@nebula/test-kit';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type HostKeyState, hostKey, hostOfSubject, judgeMessage, type StreamKind, verifyHostSignature } from '../src/index.ts';

// A few keys made once (making one is cheap, but signing with nkeys is slow: the properties sign
// with hostSigner, which host-signer.test.ts shows to be the same signature).
const hosts = ['h1', 'h2', 'web-0001'].map((id) => {
  const kp = createUser();
  return { id, kp, publicKey: kp.getPublicKey(), key: hostKey(kp.getPublicKey()), sign: hostSigner(new TextDecoder().decode(kp.getSeed())) };
});
const registry = (h: (typeof hosts)[number]): ((host: string) => HostKeyState) => {
  return (host) => (host === h.id ? { state: 'active', key: h.key } : { state: 'unknown' });
};
const kindArb = fc.constantFrom<StreamKind>('results', 'heartbeats');
const hostArb = fc.constantFrom(...hosts);
const subjectOf = (kind: StreamKind, app: string, host: string) => (kind === 'results' ? `results.${app}.${host}` : `hosts.${host}`);
const appArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/);
const bodyArb = fc.uint8Array({ minLength: 1, maxLength: 200 });

test('a message signed by the host its subject names is accepted', () => {
  fc.assert(
    fc.property(kindArb, hostArb, appArb, bodyArb, (kind, h, app, body) => {
      const subject = subjectOf(kind, app, h.id);
      const v = judgeMessage(kind, { subject, data: body, signature: h.sign(subject, body) }, registry(h), verifyHostSignature);
      assert.equal(v, { ok: true, host: h.id });
    }),
  );
});

test('any change of the subject, the body or the key fails', () => {
  fc.assert(
    fc.property(
      kindArb,
      hostArb,
      appArb,
      bodyArb,
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      fc.constantFrom('subject', 'body', 'key', 'app'),
      (kind, h, app, body, at, flip, what) => {
        const subject = subjectOf(kind, app, h.id);
        const sig = h.sign(subject, body);
        if (what === 'body') {
          const changed = body.slice();
          changed[at % changed.length] = (changed[at % changed.length]! ^ flip) & 0xff;
          assert.equal(judgeMessage(kind, { subject, data: changed, signature: sig }, registry(h), verifyHostSignature), {
            ok: false,
            reason: 'bad_signature',
            host: h.id,
          });
        } else if (what === 'key') {
          // Signed by another host, for this host's subject.
          const other = hosts.find((o) => o.id !== h.id)!;
          const forged = other.sign(subject, body);
          assert.is(judgeMessage(kind, { subject, data: body, signature: forged }, registry(h), verifyHostSignature).ok, false);
        } else if (what === 'app' && kind === 'results') {
          // A genuine result moved to another app's subject of the same host.
          const moved = subjectOf(kind, `${app}x`, h.id);
          assert.is(judgeMessage(kind, { subject: moved, data: body, signature: sig }, registry(h), verifyHostSignature).ok, false);
        } else {
          // Moved to another host's subject: that host's key does not verify it, whoever holds it.
          const other = hosts.find((o) => o.id !== h.id)!;
          const moved = subjectOf(kind, app, other.id);
          const everyone = (host: string): HostKeyState => ({ state: 'active', key: hosts.find((x) => x.id === host)!.key });
          assert.equal(judgeMessage(kind, { subject: moved, data: body, signature: sig }, everyone, verifyHostSignature), {
            ok: false,
            reason: 'bad_signature',
            host: other.id,
          });
        }
      },
    ),
  );
});

test('unsigned, unknown, revoked and malformed subjects are rejected, each with its reason', () => {
  const [h] = hosts as [(typeof hosts)[number]];
  const body = new TextEncoder().encode('{}');
  const subject = `results.web.${h.id}`;
  const sig = h.sign(subject, body);
  const judge = (s: string, signature: string | undefined, keyOf: (host: string) => HostKeyState) =>
    judgeMessage('results', { subject: s, data: body, signature }, keyOf, verifyHostSignature);
  assert.equal(judge(subject, undefined, registry(h)), { ok: false, reason: 'unsigned', host: h.id });
  assert.equal(judge(subject, 'garbage', registry(h)), { ok: false, reason: 'bad_signature', host: h.id });
  assert.equal(
    judge(subject, sig, () => ({ state: 'unknown' })),
    { ok: false, reason: 'unknown_host', host: h.id },
  );
  assert.equal(
    judge(subject, sig, () => ({ state: 'revoked' })),
    { ok: false, reason: 'revoked_host', host: h.id },
  );
  for (const bad of ['results.web', 'results.web.h1.x', 'results..h1', 'hosts.h1', 'apps.web']) {
    assert.equal(judge(bad, sig, registry(h)), { ok: false, reason: 'bad_subject', host: null }, bad);
  }
  assert.is(hostOfSubject('heartbeats', 'hosts.h1'), 'h1');
  assert.is(hostOfSubject('heartbeats', 'hosts.'), null);
  assert.is(hostOfSubject('heartbeats', 'results.web.h1'), null);
});

test("the notifier's check agrees with bus-auth's verifyMessage and signMessage", () => {
  fc.assert(
    fc.property(hostArb, hostArb, fc.string({ maxLength: 30 }), fc.uint8Array({ maxLength: 100 }), fc.boolean(), (signer, checker, subject, body, tamper) => {
      const sig = signMessage(signer.kp, subject, body);
      const data = tamper ? new Uint8Array([...body, 1]) : body;
      assert.is(verifyHostSignature(checker.key, subject, data, sig), verifyMessage(checker.publicKey, subject, data, sig));
    }),
    { numRuns: 25 }, // nkeys' signMessage and verifyMessage take ~10 ms each
  );
  assert.throws(() => hostKey('not a key'));
  assert.throws(() => hostKey(hosts[0]!.publicKey.replace(/^U/, 'A')), 'an account key is not a host key');
});

test.run();
