import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DEFAULT_LIMITS,
  type Delivery,
  deliveryOf,
  judgeStep,
  medianOf,
  nearestRank,
  parseSteps,
  planSteps,
  type StepMeasure,
  sampleIndices,
  TOPOLOGIES,
} from '../bench/ceiling-plan.ts';
import { replaceSection } from '../bench/report.ts';

const MB = 1024 * 1024;

function step(consumers: number, over: Partial<StepMeasure> = {}, delivery: Partial<Delivery> = {}): StepMeasure {
  return {
    consumers,
    createError: null,
    createMs: consumers,
    baseRssBytes: 16 * MB,
    rssBytes: 16 * MB + consumers * 80_000,
    delivery: { read: consumers, delivered: consumers, p50Ms: consumers / 20, p99Ms: consumers / 10, maxMs: consumers / 10, ...delivery },
    cpuMsPerRollout: consumers / 5,
    serverDown: null,
    runError: null,
    ...over,
  };
}

test('planSteps: positive and strictly increasing; a quick run is smaller than the full one', () => {
  for (const t of TOPOLOGIES) {
    for (const quick of [true, false]) {
      const s = planSteps(t, quick);
      assert.ok(s.length >= 2);
      s.forEach((v, i) => {
        assert.ok(v > 0 && Number.isInteger(v));
        if (i > 0) assert.ok(v > s[i - 1]!);
      });
    }
    assert.ok(Math.max(...planSteps(t, true)) < Math.max(...planSteps(t, false)));
  }
});

test('parseSteps: any order and repeats give the distinct values, ascending; a bad value is refused by name', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 1_000_000 }), { maxLength: 8 }), (vs) => {
      assert.equal(
        parseSteps(vs.join(',')),
        [...new Set(vs)].sort((a, b) => a - b),
      );
    }),
  );
  assert.equal(parseSteps('10_000, 2500,,'), [2500, 10_000]);
  assert.equal(parseSteps(''), []);
  assert.throws(() => parseSteps('1000,lots'), /"lots"/);
  assert.throws(() => parseSteps('0'), /"0"/);
});

test('sampleIndices: distinct, ascending, inside [0, n), min(n, max) of them, the first and the last included', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 50_000 }), fc.integer({ min: 0, max: 3000 }), (n, max) => {
      const s = sampleIndices(n, max);
      assert.is(s.length, Math.min(n, max));
      s.forEach((v, i) => {
        assert.ok(v >= 0 && v < n);
        if (i > 0) assert.ok(v > s[i - 1]!);
      });
      if (s.length >= 2) {
        assert.is(s[0], 0);
        assert.is(s.at(-1), n - 1);
      }
    }),
  );
});

test('nearestRank: a value of the sample; NaN once the rank falls among the missing ones; monotonic in q', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true })), fc.nat(20), fc.double({ min: 0, max: 1, noNaN: true }), (vs, missing, q) => {
      const s = [...vs].sort((a, b) => a - b);
      const total = s.length + missing;
      const v = nearestRank(s, total, q);
      if (total === 0) return assert.ok(Number.isNaN(v));
      const rank = Math.max(1, Math.ceil(q * total));
      if (rank > s.length) assert.ok(Number.isNaN(v));
      else assert.ok(s.includes(v));
      const higher = nearestRank(s, total, Math.min(1, q + 0.1));
      if (!Number.isNaN(higher)) assert.ok(higher >= v);
    }),
  );
  assert.is(nearestRank([1, 2, 3, 4], 4, 1), 4);
  assert.ok(Number.isNaN(nearestRank([1, 2, 3], 4, 1)));
  assert.is(nearestRank([1, 2, 3], 4, 0.5), 2);
});

test('deliveryOf: everyone counted; the p99 of 100 consumers is the 99th; one lost in 100 leaves the p99, two do not', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(deliveryOf(100, [...hundred].reverse()), { read: 100, delivered: 100, p50Ms: 50, p99Ms: 99, maxMs: 100 });
  const oneLost = deliveryOf(100, hundred.slice(0, 99));
  assert.is(oneLost.p99Ms, 99);
  assert.ok(Number.isNaN(oneLost.maxMs));
  assert.ok(Number.isNaN(deliveryOf(100, hundred.slice(0, 98)).p99Ms));
});

test('judgeStep: linear growth holds; what fails is named; a worse step never gets a better verdict', () => {
  const first = step(1000);
  assert.equal(judgeStep([], first), { kind: 'held' });
  assert.equal(judgeStep([first], step(5000)), { kind: 'held' });
  assert.is(judgeStep([first], step(5000, { createError: 'timeout' })).kind, 'failed');
  assert.is(judgeStep([first], step(5000, { serverDown: 'n1 exited' })).kind, 'failed');
  assert.is(judgeStep([first], step(5000, { runError: 'publish: timeout' })).kind, 'failed');
  assert.is(judgeStep([first], step(5000, {}, { delivered: 4999 })).kind, 'failed');
  assert.is(judgeStep([first], step(5000, {}, { p99Ms: 6000 })).kind, 'degraded');
  assert.is(judgeStep([first], step(2000, {}, { p99Ms: 2000 })).kind, 'degraded'); // 10x the per-consumer p99 of 1,000
  assert.is(judgeStep([first], step(2000, { rssBytes: 16 * MB + 2000 * 200_000 })).kind, 'degraded');
  // Below the floor, a few ms more is noise, not growth.
  assert.is(judgeStep([step(100, {}, { p99Ms: 2 })], step(200, {}, { p99Ms: 200 })).kind, 'held');

  const rank = { held: 0, degraded: 1, failed: 2 } as const;
  fc.assert(
    fc.property(
      fc.integer({ min: 100, max: 50_000 }),
      fc.double({ min: 1, max: 10_000, noNaN: true }),
      fc.double({ min: 0, max: 5000, noNaN: true }),
      fc.integer({ min: 10_000, max: 500_000 }),
      fc.integer({ min: 0, max: 100_000 }),
      (n, p99, worse, perConsumer, more) => {
        const earlier = [step(100)];
        const base = step(n, { rssBytes: 16 * MB + n * perConsumer }, { p99Ms: p99 });
        const slower = step(n, { rssBytes: 16 * MB + n * perConsumer + more }, { p99Ms: p99 + worse });
        assert.ok(rank[judgeStep(earlier, slower, DEFAULT_LIMITS).kind] >= rank[judgeStep(earlier, base, DEFAULT_LIMITS).kind]);
      },
    ),
  );
});

test('medianOf: NaN when empty or spoilt by a NaN, else the median', () => {
  assert.is(medianOf([3, 1, 2]), 2);
  assert.is(medianOf([1, 2, 3, 4]), 2.5);
  assert.ok(Number.isNaN(medianOf([])));
  assert.ok(Number.isNaN(medianOf([1, Number.NaN, 3])));
});

test("replaceSection: a part's section replaced in place, or put before the findings; the others kept as they were", () => {
  const md = ['# Nebula benchmarks', '', '## 1. Fan-out', '', 'old fan-out', '', '## 5. What bounds the missed targets', '', 'findings', ''].join('\n');
  const added = replaceSection(md, '8. The ceiling', 'ceiling rows', 'What bounds the missed targets');
  assert.ok(added.indexOf('## 8. The ceiling') < added.indexOf('## 5. What bounds'));
  assert.ok(added.includes('old fan-out') && added.includes('findings') && added.includes('ceiling rows'));
  const again = replaceSection(added, '8. The ceiling', 'new rows', 'What bounds the missed targets');
  assert.ok(again.includes('new rows') && !again.includes('ceiling rows'));
  assert.is(again.split('## 8. The ceiling').length, 2);
  assert.is(replaceSection(again, '8. The ceiling', 'new rows', 'What bounds the missed targets'), again);
  const fresh = replaceSection('# Nebula benchmarks\n', '8. The ceiling', 'rows', 'What bounds');
  assert.ok(fresh.endsWith('## 8. The ceiling\n\nrows\n'));
});

test.run();
