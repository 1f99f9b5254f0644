import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cumulativeSize, hostOrder, planWaves } from '../src/index.ts';

const hostId = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
const hostSet = fc.uniqueArray(hostId, { maxLength: 300 });
/** Cumulative percents as a strategy has them: strictly increasing, ending at 100. */
const wavesArb = fc.uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 6 }).map((ps) => [...ps.sort((a, b) => a - b), 100]);

test('waves never exceed their percent, except rounding up to one whole host', () => {
  fc.assert(
    fc.property(hostSet, wavesArb, (hosts, waves) => {
      const plan = planWaves('web', hosts, waves);
      const n = hosts.length;
      let cumulative = 0;
      for (const w of plan) {
        cumulative += w.hosts.length;
        assert.ok(w.hosts.length >= 1, 'every wave has a host');
        assert.ok(cumulative < (w.percent * n) / 100 + 1, `cumulative ${cumulative} of ${n} at ${w.percent}%`);
      }
    }),
  );
});

test('cumulative sizes increase and end at n, every member exactly once', () => {
  fc.assert(
    fc.property(hostSet, wavesArb, (hosts, waves) => {
      const plan = planWaves('web', hosts, waves);
      const all = plan.flatMap((w) => w.hosts);
      assert.is(all.length, hosts.length);
      assert.equal([...all].sort(), [...hosts].sort());
      assert.ok(plan.every((w, i) => i === 0 || w.percent > (plan[i - 1]?.percent ?? 0)));
      assert.equal(all, hostOrder('web', hosts), 'waves follow the host order');
      if (hosts.length === 0) assert.is(plan.length, 0);
      // The last wave reaches every member (a later wave that would add none is dropped).
      else assert.ok((plan.at(-1)?.percent ?? 0) * hosts.length >= 100 * (hosts.length - 1));
    }),
  );
});

test('the order is stable: other hosts joining or leaving never move one host relative to another', () => {
  fc.assert(
    fc.property(hostSet, hostSet, (a, b) => {
      const both = [...new Set([...a, ...b])];
      const full = hostOrder('web', both);
      const sub = hostOrder('web', a);
      // The order of `a` alone is the order of `a` within the larger set.
      assert.equal(
        full.filter((h) => a.includes(h)),
        sub,
      );
      assert.equal(hostOrder('web', [...a].reverse()), sub, 'the input order does not matter');
    }),
  );
});

test('the canaries depend on the app (not every app starts on the same hosts)', () => {
  const hosts = Array.from({ length: 50 }, (_, i) => `host-${i}`);
  assert.not.equal(hostOrder('web', hosts).slice(0, 5), hostOrder('api', hosts).slice(0, 5));
});

test('rounding: exact percents are not rounded up by float noise; small waves get one host', () => {
  assert.is(cumulativeSize(7, 100), 7);
  assert.is(cumulativeSize(100, 7), 7);
  assert.is(cumulativeSize(1000, 1), 10);
  assert.is(cumulativeSize(5, 5), 1);
  assert.is(cumulativeSize(5, 25), 2);
  assert.is(cumulativeSize(0, 50), 0);
  const plan = planWaves('web', ['a', 'b', 'c'], [5, 25, 100]);
  // 5% and 25% of 3 are both one host: the second adds none and is dropped.
  assert.equal(
    plan.map((w) => [w.wave, w.percent, w.hosts.length]),
    [
      [1, 5, 1],
      [2, 100, 2],
    ],
  );
});

test.run();
