import type { ObservedContainer } from '../runtime/container-runtime.ts';
import { byCodeUnit } from '../text-order.ts';
import { isGoing, runJobOf, runStartedSeconds } from './run-spec.ts';

/** How many finished runs of a listed job stay on a host (their logs, for `docker logs`). */
export const KEPT_RUNS = 3;

/**
 * Which run containers to remove, pure (cron-cleanup.test.ts): of each job still listed, the
 * finished runs beyond the newest `keep`; of a job no longer listed, every finished run. Never a
 * run still going, nor one in flight in this process (`inFlight`: container ids, between create
 * and the report), nor any container that is not a run.
 */
export function runsToRemove(
  containers: readonly ObservedContainer[],
  listed: ReadonlySet<string>,
  inFlight: ReadonlySet<string>,
  keep = KEPT_RUNS,
): ObservedContainer[] {
  const finished = new Map<string, ObservedContainer[]>();
  for (const c of containers) {
    const job = runJobOf(c);
    if (job === null || isGoing(c) || inFlight.has(c.id) || c.state === 'removing') continue;
    finished.set(job, [...(finished.get(job) ?? []), c]);
  }
  const out: ObservedContainer[] = [];
  for (const [job, runs] of finished) {
    const newestFirst = [...runs].sort((a, b) => runStartedSeconds(b) - runStartedSeconds(a) || byCodeUnit(b.name, a.name) || byCodeUnit(a.id, b.id));
    out.push(...newestFirst.slice(listed.has(job) ? keep : 0));
  }
  return out.sort((a, b) => byCodeUnit(a.id, b.id));
}
