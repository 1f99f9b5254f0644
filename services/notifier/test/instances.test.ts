import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { foldInstance, isoMicros, NO_INSTANCES } from '../src/index.ts';

/** The instance fold's rules, over random sequences of heartbeats (ms apart, instances from a small set). */
const WINDOW = 15_000;
const run = (beats: { instance: string; gap: number }[]) => {
  let state = NO_INSTANCES;
  let at = 1_000_000;
  for (const b of beats) {
    at += b.gap;
    state = foldInstance(state, b.instance, at, WINDOW);
  }
  return state;
};
const beat = (instances: string[]) => fc.record({ instance: fc.constantFrom(...instances), gap: fc.integer({ min: 1, max: 10_000 }) });

test('one process throughout, or processes that follow each other (restarts): never flagged', () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 6 }), (runs) => {
      // Run i is process i's heartbeats: none comes back once the next one has spoken.
      const beats = runs.flatMap((gaps, i) => gaps.map((gap) => ({ instance: `p${i}`, gap })));
      return run(beats).duplicateAt === null;
    }),
  );
});

test('an instance that speaks again within the window after another one did: flagged at that heartbeat', () => {
  fc.assert(
    fc.property(
      fc.array(beat(['a', 'b']), { maxLength: 20 }),
      fc.integer({ min: 1, max: WINDOW / 2 }),
      fc.integer({ min: 1, max: WINDOW / 2 }),
      (prefix, g1, g2) => {
        const s = run([...prefix, { instance: 'a', gap: 1 }, { instance: 'b', gap: g1 }, { instance: 'a', gap: g2 }]);
        return s.duplicateAt !== null && s.current === 'a' && Object.keys(s.seen).length === 2;
      },
    ),
  );
});

test('an instance silent longer than the window is forgotten: its return is a restart, not a duplicate', () => {
  const s = run([
    { instance: 'a', gap: 1 },
    { instance: 'b', gap: WINDOW + 1 },
    { instance: 'a', gap: 1 },
  ]);
  assert.is(s.duplicateAt, null);
  assert.equal(Object.keys(s.seen).sort(), ['a', 'b']);
});

test('heartbeats without an instance (older workers) change nothing', () => {
  fc.assert(
    fc.property(fc.array(beat(['a', 'b']), { maxLength: 10 }), (beats) => {
      const s = run(beats);
      return foldInstance(s, undefined, 9e12, WINDOW) === s;
    }),
  );
});

test('isoMicros keeps the microseconds PostgreSQL stores', () => {
  assert.is(isoMicros(1_764_614_400_123_456_789n), '2025-12-01T18:40:00.123456Z');
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: 4_000_000_000_000_000_000n }), (ns) => Date.parse(isoMicros(ns)) === Number(ns / 1_000_000n)));
});

test.run();
