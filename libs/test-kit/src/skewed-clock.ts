/**
 * A preload that sets this process's wall clock off by `NEBULA_TEST_CLOCK_SKEW_MS` (may be negative),
 * for tests of hosts whose clocks are wrong:
 *
 *   NODE_OPTIONS=--import=<path of this file> NEBULA_TEST_CLOCK_SKEW_MS=-600000 node services/worker/src/main.ts
 *
 * `Date.now()` and `new Date()` move; `performance.now()` and timers do not (they are monotonic, as on
 * a host whose wall clock is wrong). Loaded by path (`SKEWED_CLOCK_PRELOAD`), never imported.
 */
const skew = Number(process.env.NEBULA_TEST_CLOCK_SKEW_MS ?? '0');
if (!Number.isFinite(skew)) throw new RangeError(`NEBULA_TEST_CLOCK_SKEW_MS must be a number of milliseconds (got ${process.env.NEBULA_TEST_CLOCK_SKEW_MS})`);

if (skew !== 0) {
  const RealDate = Date;
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + skew);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return RealDate.now() + skew;
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}
