import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KEPT_RUNS, runsToRemove } from '../src/cron/run-cleanup.ts';
import { isGoing, runJobOf, runStartedSeconds } from '../src/cron/run-spec.ts';
import { LABELS, type ObservedContainer } from '../src/runtime/container-runtime.ts';

/** Which finished cron runs go: property tests of the pure choice. */

const jobs = ['a', 'b', 'c'];
const states = ['running', 'exited', 'exited', 'exited', 'created', 'dead', 'restarting', 'paused'];

const containerArb = fc.record({
  kind: fc.constantFrom('run', 'run', 'run', 'app', 'foreign'),
  job: fc.constantFrom(...jobs),
  seconds: fc.integer({ min: 1_000_000_000, max: 1_000_000_100 }),
  state: fc.constantFrom(...states),
});

function build(list: Array<{ kind: string; job: string; seconds: number; state: string }>): ObservedContainer[] {
  return list.map((c, i) => {
    const labels: Record<string, string> =
      c.kind === 'foreign'
        ? { [LABELS.cronJob]: c.job }
        : { [LABELS.owner]: 'nebula', [LABELS.host]: 'h', [LABELS.cronJob]: c.job, ...(c.kind === 'app' ? { [LABELS.app]: c.job } : {}) };
    return { id: `id${i}`, name: `${c.job}-${c.seconds}`, labels, state: c.state, health: undefined, imageId: 'sha256:x' };
  });
}

test('properties: never a run going, one in flight, or a container that is not a run; a listed job keeps its newest 3 finished; an unlisted one keeps none', () => {
  fc.assert(
    fc.property(
      fc.array(containerArb, { maxLength: 20 }),
      fc.subarray(jobs),
      fc.array(fc.integer({ min: 0, max: 19 }), { maxLength: 4 }),
      (raw, listedJobs, inFlightIdx) => {
        const containers = build(raw);
        const listed = new Set(listedJobs);
        const inFlight = new Set(inFlightIdx.map((i) => `id${i}`));
        const out = runsToRemove(containers, listed, inFlight);
        const removed = new Set(out.map((c) => c.id));
        for (const c of out) {
          assert.ok(runJobOf(c) !== null, 'only runs');
          assert.not.ok(isGoing(c), 'never a run still going');
          assert.not.ok(inFlight.has(c.id), 'never a run in flight');
        }
        for (const job of jobs) {
          const finished = containers.filter((c) => runJobOf(c) === job && !isGoing(c) && !inFlight.has(c.id));
          const kept = finished.filter((c) => !removed.has(c.id));
          assert.equal(kept.length, listed.has(job) ? Math.min(KEPT_RUNS, finished.length) : 0);
          // The kept ones are the newest.
          const oldestKept = Math.min(...kept.map(runStartedSeconds));
          for (const c of finished) if (removed.has(c.id)) assert.ok(runStartedSeconds(c) <= oldestKept);
        }
      },
    ),
  );
});

test('runStartedSeconds reads the name of a run; another name reads 0', () => {
  const labels = { [LABELS.owner]: 'nebula', [LABELS.cronJob]: 'job-x' };
  assert.equal(runStartedSeconds({ name: 'job-x-1700000000', labels }), 1_700_000_000);
  assert.equal(runStartedSeconds({ name: 'other-1700000000', labels }), 0);
  assert.equal(runStartedSeconds({ name: 'job-x-abc', labels }), 0);
});

test.run();
