import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appsOutside, consumerTuning, hashSecret, isStale, joinRefusal, RENEW_MAX_SKEW_MS, sameDigest } from '../src/hosts/join-rules.ts';
import { AttemptThrottle } from '../src/http/attempt-throttle.ts';

/** The decisions of joining and renewing (pure), as properties. */

const app = fc.constantFrom<string>('web', 'db', 'cache', 'api', 'jobs');
const NOW = new Date('2026-12-01T12:00:00Z');

test('appsOutside: exactly the wanted apps the token does not allow; none when it allows any', () => {
  fc.assert(
    fc.property(fc.array(app), fc.option(fc.array(app), { nil: null }), (wanted, allowed) => {
      const out = appsOutside(wanted, allowed);
      if (allowed === null) return assert.equal(out, []);
      for (const a of out) assert.ok(wanted.includes(a) && !allowed.includes(a));
      for (const a of wanted) assert.ok(allowed.includes(a) || out.includes(a));
      assert.equal(out, [...new Set(out)].sort());
    }),
  );
});

test('joinRefusal: a wrong secret is "unknown token" whatever else holds; with the right one, expiry, then uses, then apps', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 20, maxLength: 60 }),
      fc.string({ minLength: 20, maxLength: 60 }),
      fc.integer({ min: -3600, max: 3600 }),
      fc.integer({ min: -1, max: 3 }),
      fc.option(fc.array(app, { minLength: 1 }), { nil: null }),
      fc.array(app),
      (secret, other, expiresIn, uses, allowed, wanted) => {
        const token = { secret_hash: hashSecret(secret), expires_at: new Date(NOW.getTime() + expiresIn * 1000), uses_left: uses, apps: allowed };
        if (other !== secret) assert.is(joinRefusal(token, other, wanted, NOW)?.refusal, 'unknown token');
        assert.is(joinRefusal(undefined, secret, wanted, NOW)?.refusal, 'unknown token');
        const r = joinRefusal(token, secret, wanted, NOW);
        const expected = expiresIn <= 0 ? 'token expired' : uses <= 0 ? 'token used' : appsOutside(wanted, allowed).length > 0 ? 'apps not allowed' : undefined;
        assert.is(r?.refusal, expected);
      },
    ),
  );
});

test('sameDigest: equal only for the same digest; a wrong length or an empty one never matches', () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) => {
      assert.is(sameDigest(hashSecret(a), hashSecret(b)), a === b);
    }),
  );
  assert.not.ok(sameDigest('', ''));
  assert.not.ok(sameDigest(hashSecret('x'), hashSecret('x').slice(0, 10)));
});

test('isStale: a renewal more than 24 hours from the clock, either way, or not a time', () => {
  fc.assert(
    fc.property(fc.integer({ min: -2 * RENEW_MAX_SKEW_MS, max: 2 * RENEW_MAX_SKEW_MS }), (off) => {
      assert.is(isStale(new Date(NOW.getTime() + off).toISOString(), NOW), Math.abs(off) > RENEW_MAX_SKEW_MS);
    }),
  );
  assert.ok(isStale('yesterday', NOW));
});

test('consumerTuning: what the host asked for, the defaults for the rest', () => {
  assert.equal(consumerTuning({ ack_wait_seconds: 5, inactive_threshold_hours: 1 }), { ackWaitMs: 5000, inactiveThresholdMs: 3_600_000, maxAckPending: 8 });
  assert.equal(consumerTuning(undefined), { ackWaitMs: 30_000, inactiveThresholdMs: 72 * 3_600_000, maxAckPending: 8 });
});

test('AttemptThrottle: an address is refused once it failed max times within the window, and only until the window passes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.integer({ min: 0, max: 180_000 }), { maxLength: 40 }), (max, gaps) => {
      const t = new AttemptThrottle({ maxFailures: max, windowMs: 60_000 });
      const times: number[] = [];
      let now = 0;
      for (const gap of gaps) {
        now += gap;
        const inWindow = times.filter((x) => x > now - 60_000).length;
        const blocked = t.blockedForMs('a', now);
        assert.is(blocked > 0, inWindow >= max, `at ${now}: ${inWindow} failures in the window, max ${max}`);
        if (blocked > 0) {
          assert.ok(blocked <= 60_000);
          assert.is(t.blockedForMs('a', now + blocked), 0, 'free once the oldest counted failure leaves the window');
        } else {
          t.recordFailure('a', now);
          times.push(now);
        }
        assert.is(t.blockedForMs('other', now), 0, 'another address is not touched');
      }
    }),
  );
});

test('AttemptThrottle: at most maxKeys addresses are kept', () => {
  const t = new AttemptThrottle({ maxFailures: 1, windowMs: 60_000, maxKeys: 3 });
  for (const k of ['a', 'b', 'c', 'd']) t.recordFailure(k, 0);
  assert.is(t.blockedForMs('a', 1), 0, 'the oldest address was dropped');
  assert.ok(t.blockedForMs('d', 1) > 0);
});

test.run();
