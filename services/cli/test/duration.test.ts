import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../src/duration.ts';

test('seconds, or a duration with units', () => {
  const cases: Array<[string, number | null]> = [
    ['15', 15_000],
    ['1.5', 1_500],
    ['15s', 15_000],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    [' 10s ', 10_000],
    ['0', null],
    ['0s', null],
    ['', null],
    ['-5', null],
    ['5x', null],
    ['s', null],
    ['1d', null],
    ['2m 3s', null],
    ['1e3', null],
    ['0.0001ms', null],
    ['25d', null],
    ['600h', null],
  ];
  for (const [text, ms] of cases) assert.is(parseDuration(text), ms, JSON.stringify(text));
});

test('whole seconds and their formatting agree; every accepted duration is positive and bounded', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2_000_000 }), (s) => parseDuration(String(s)) === s * 1000 && parseDuration(formatDuration(s * 1000)) === s * 1000),
  );
  fc.assert(
    fc.property(fc.string(), (t) => {
      const ms = parseDuration(t);
      return ms === null || (ms >= 1 && ms <= MAX_DURATION_MS);
    }),
  );
});

test.run();
