import { type RolloutStrategy, rolloutStrategySchema } from '@nebula/contracts';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { budgetExceeded, type CountedHost, type DecideInput, decide } from '../src/rollouts/decide.ts';

const T0 = Date.parse('2026-12-01T12:00:00Z');

const strategyArb: fc.Arbitrary<RolloutStrategy> = fc
  .record({
    bake_seconds: fc.integer({ min: 0, max: 60 }),
    max_failed_percent: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
    max_failed_hosts: fc.option(fc.integer({ min: 1, max: 10 }), { nil: null }),
    min_hosts_tried: fc.integer({ min: 1, max: 10 }),
    on_failure: fc.constantFrom('rollback' as const, 'pause' as const),
    host_timeout_seconds: fc.integer({ min: 1, max: 600 }),
    auto_promote: fc.boolean(),
  })
  .map((s) => rolloutStrategySchema.parse({ waves: [10, 50, 100], ...s }));

const hostArb = (i: number): fc.Arbitrary<CountedHost> =>
  fc.record({
    host: fc.constant(`h${i}`),
    wave: fc.integer({ min: 1, max: 2 }),
    since: fc.constant(T0),
    result: fc.option(
      fc.record({
        status: fc.constantFrom('applied' as const, 'failed' as const, 'superseded' as const),
        at: fc.integer({ min: T0, max: T0 + 700_000 }),
        error: fc.constant<string | null>('boom'),
      }),
      { nil: null },
    ),
    unhealthy: fc.constant(null),
  });

const inputArb: fc.Arbitrary<DecideInput> = fc
  .tuple(strategyArb, fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 1_000_000 }), fc.constantFrom('rolling' as const, 'paused' as const))
  .chain(([strategy, n, dt, state]) =>
    fc.tuple(...Array.from({ length: n }, (_, i) => hostArb(i))).map((hosts) => ({
      strategy,
      state,
      pausedReason: state === 'paused' ? ('manual' as const) : null,
      wave: 2,
      waves: 3,
      waveStartedAt: T0,
      hosts,
      waived: [],
      now: T0 + dt,
    })),
  );

/** The budget counted from scratch, as the issue states it. */
function counts(input: DecideInput): { failed: number; reported: number } {
  let failed = 0;
  let reported = 0;
  for (const h of input.hosts) {
    const r = h.result !== null && h.result.at >= h.since ? h.result : null;
    const timedOut = r === null && input.now >= h.since + input.strategy.host_timeout_seconds * 1000;
    if (r !== null || timedOut) reported++;
    if (timedOut || r?.status === 'failed') failed++;
  }
  return { failed, reported };
}

function exceeded(s: RolloutStrategy, failed: number, reported: number): boolean {
  const byHosts = s.max_failed_hosts !== null && failed >= s.max_failed_hosts;
  const byPercent = s.max_failed_percent !== null && reported >= s.min_hosts_tried && failed * 100 >= s.max_failed_percent * reported;
  const noLimit = s.max_failed_hosts === null && s.max_failed_percent === null;
  return failed > 0 && (byHosts || byPercent || noLimit);
}

test('a rolling rollout fails exactly when the budget is exceeded', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const rolling = { ...input, state: 'rolling' as const, pausedReason: null };
      const { failed, reported } = counts(rolling);
      const j = decide(rolling);
      assert.is(j.failed, failed);
      assert.is(j.reported, reported);
      assert.is(j.decision.kind === 'fail', exceeded(rolling.strategy, failed, reported));
      assert.is(budgetExceeded(rolling.strategy, failed, reported), exceeded(rolling.strategy, failed, reported));
    }),
    { numRuns: 500 },
  );
});

test('a wave never advances while a counted host is pending, nor before its bake', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const j = decide({ ...input, state: 'rolling', pausedReason: null });
      if (j.decision.kind !== 'advance' && j.decision.kind !== 'succeed' && j.decision.kind !== 'pause') return;
      assert.ok(j.decision.kind !== 'pause' || j.decision.reason === 'promotion');
      const timeout = input.strategy.host_timeout_seconds * 1000;
      for (const h of input.hosts) assert.ok(h.result !== null || input.now >= h.since + timeout, `${h.host} is pending`);
      const last = Math.max(input.waveStartedAt, ...input.hosts.filter((h) => h.wave === input.wave).map((h) => (h.result ? h.result.at : h.since + timeout)));
      assert.ok(input.now >= last + input.strategy.bake_seconds * 1000, 'baked');
    }),
    { numRuns: 500 },
  );
});

test('a paused rollout only waits, or fails with on_failure rollback', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const j = decide({ ...input, state: 'paused', pausedReason: 'manual' });
      assert.ok(j.decision.kind === 'wait' || (j.decision.kind === 'fail' && input.strategy.on_failure === 'rollback'));
    }),
  );
});

const strategy = rolloutStrategySchema.parse({ waves: [10, 50, 100], bake_seconds: 30, max_failed_hosts: 2, host_timeout_seconds: 60 });
const host = (h: string, wave: number, result: CountedHost['result'], unhealthy: string | null = null): CountedHost => ({
  host: h,
  wave,
  since: T0,
  result,
  unhealthy,
});
const base: DecideInput = { strategy, state: 'rolling', pausedReason: null, wave: 1, waves: 3, waveStartedAt: T0, hosts: [], waived: [], now: T0 };

test('bake: the next wave starts bake_seconds after the last report, not before', () => {
  const hosts = [host('a', 1, { status: 'applied', at: T0 + 5000, error: null })];
  assert.equal(decide({ ...base, hosts, now: T0 + 34_999 }).decision, { kind: 'wait' });
  assert.equal(decide({ ...base, hosts, now: T0 + 35_000 }).decision, { kind: 'advance', to: 2 });
  assert.equal(decide({ ...base, hosts, wave: 3, now: T0 + 35_000 }).decision, { kind: 'succeed' });
  const manual = rolloutStrategySchema.parse({ ...strategy, auto_promote: false });
  assert.equal(decide({ ...base, strategy: manual, hosts, now: T0 + 35_000 }).decision, { kind: 'pause', reason: 'promotion' });
});

test('a wave with no counted host (all offline at its start) is done after its bake', () => {
  assert.equal(decide({ ...base, now: T0 + 30_000 }).decision, { kind: 'advance', to: 2 });
});

test('an unhealthy container during bake is a failure found by the controller, and the bake starts again', () => {
  const hosts = [host('a', 1, { status: 'applied', at: T0, error: null }, 'container web-0 exited (code 1)')];
  const j = decide({ ...base, hosts, now: T0 + 10_000 });
  assert.equal(j.found, [{ host: 'a', error: 'after applying: container web-0 exited (code 1)' }]);
  assert.is(j.failed, 1);
  assert.equal(j.decision, { kind: 'wait' });
});

test('timeouts count as failed and name the hosts; retried results before the retry do not count', () => {
  const hosts = [host('a', 1, null), host('b', 1, { status: 'failed', at: T0 + 1000, error: 'port clash' })];
  const j = decide({ ...base, hosts, now: T0 + 60_000 });
  assert.equal(j.decision, {
    kind: 'fail',
    onFailure: 'rollback',
    reason: '2 of 2 hosts failed (budget: max_failed_hosts 2): first errors: b: port clash, a: no result within host_timeout_seconds (60 s)',
  });
  const retried = [
    host('a', 1, { status: 'applied', at: T0, error: null }),
    { ...host('b', 1, { status: 'failed', at: T0 + 1000, error: 'x' }), since: T0 + 2000 },
  ];
  assert.equal(decide({ ...base, hosts: retried, now: T0 + 3000 }).decision, { kind: 'wait' });
  assert.is(decide({ ...base, hosts: retried, now: T0 + 3000 }).failed, 0);
  assert.is(decide({ ...base, hosts: [host('b', 1, { status: 'failed', at: T0, error: 'x' })], waived: ['b'], now: T0 + 30_000 }).failed, 0);
});

test.run();
