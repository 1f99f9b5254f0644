import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backoffDelay, nextRestartAllowedAt, reconcileDelay } from '../src/planner/backoff.ts';

/** When the worker tries again: reconciles after failures, restarts of a container that stays unhealthy. */

test('reconcile: one interval while it works, doubling after each failure, capped', () => {
  assert.equal(
    [0, 1, 2, 3, 4, 5, 6].map((f) => reconcileDelay(30_000, f, 300_000)),
    [30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000],
  );
  assert.is(reconcileDelay(1_000, 10_000, 5_000), 5_000, 'no overflow after a long outage');
  assert.is(reconcileDelay(10_000, 3, 1_000), 10_000, 'a cap below the interval never shortens it');
});

test('backoff: never below the base, never above the cap, never shorter after one more failure', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 1, max: 1e7 }), fc.integer({ min: 0, max: 2000 }), (base, cap, failures) => {
      const d = backoffDelay(base, failures, cap);
      assert.ok(d >= base && d <= Math.max(base, cap) && Number.isFinite(d));
      assert.ok(backoffDelay(base, failures + 1, cap) >= d);
    }),
  );
});

test('unhealthy restarts: at once the first time, then base, 2x, 4x... after the last restart, capped', () => {
  const base = 10_000;
  const cap = 60_000;
  assert.is(nextRestartAllowedAt(undefined, base, cap), Number.NEGATIVE_INFINITY);
  const at = (restarts: number) => nextRestartAllowedAt({ restarts, lastAt: 1_000_000 }, base, cap) - 1_000_000;
  assert.equal([1, 2, 3, 4, 5, 9].map(at), [10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
});

test('unhealthy restarts, simulated: a container that never gets healthy is restarted ever less often', () => {
  // Health checked every 10 s for an hour; each check restarts only when allowed.
  const base = 10_000;
  const cap = 300_000;
  let record: { restarts: number; lastAt: number } | undefined;
  const times: number[] = [];
  for (let now = 0; now <= 3_600_000; now += base) {
    if (now < nextRestartAllowedAt(record, base, cap)) continue;
    record = { restarts: (record?.restarts ?? 0) + 1, lastAt: now };
    times.push(now);
  }
  // Every check (360) before the fix; here: 0, 10, 30, 70, 150, 310 s, then every 300 s.
  assert.equal(times.slice(0, 6), [0, 10_000, 30_000, 70_000, 150_000, 310_000]);
  assert.ok(times.length < 20, `${times.length} restarts in an hour`);
  for (let i = 2; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= times[i - 1]! - times[i - 2]! || times[i]! - times[i - 1]! === cap);
});

test.run();
