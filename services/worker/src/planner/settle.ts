import type { ContainerDetails } from '../runtime/container-runtime.ts';

/**
 * Whether the containers an apply just started came up: the pure judgement of the settle watch
 * (WORKER_SETTLE_SECONDS). The executor inspects the new containers every poll and asks this; the
 * first `failed` ends the watch at once (the previous revision is put back), so a container that
 * exits on start costs one poll, not the whole settle time.
 *
 *   started ──each poll──▶ exited / dead / restarted / unhealthy / gone ─────────────▶ failed
 *      │                   all running, settle time passed, every healthcheck healthy ─▶ settled
 *      │                   a healthcheck still starting after its own budget ──────────▶ failed
 *      └─────────────────── otherwise ─────────────────────────────────────────────────▶ watch
 *
 * A container with a healthcheck must also be healthy: as long as it says `starting` the watch goes
 * on past the settle time, up to what the healthcheck itself may take (its start period, then its
 * retries at its interval and timeout), since a check every 30 s cannot pass within 10 s; a check
 * that fails turns it `unhealthy`, which fails at once.
 */
export interface SettleObservation {
  name: string;
  /** What the engine says now; null when the container is gone. */
  details: Pick<ContainerDetails, 'state' | 'health' | 'restarting' | 'restartCount' | 'exitCode'> | null;
  /** How long its healthcheck may take to say healthy (ms); null without a healthcheck. */
  healthBudgetMs: number | null;
}

export type SettleVerdict = { kind: 'settled' } | { kind: 'watch' } | { kind: 'failed'; reason: string };

/** The time a healthcheck may take to pass: its start period, then each retry at its interval and timeout. */
export function healthBudgetMs(hc: { startPeriodSeconds: number; intervalSeconds: number; timeoutSeconds: number; retries: number }): number {
  return (hc.startPeriodSeconds + (hc.intervalSeconds + hc.timeoutSeconds) * (hc.retries + 1)) * 1000;
}

const DOWN = new Set(['exited', 'dead']);

export function judgeSettle(observations: readonly SettleObservation[], elapsedMs: number, settleMs: number): SettleVerdict {
  const within = `within ${Math.max(Math.ceil(settleMs / 1000), Math.ceil(elapsedMs / 1000))} s of starting`;
  const sorted = [...observations].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { name, details: d } of sorted) {
    if (d === null) return { kind: 'failed', reason: `${name} disappeared ${within}` };
    if (DOWN.has(d.state)) return { kind: 'failed', reason: `${name} ${d.exitCode !== null ? `exited with code ${d.exitCode}` : `was ${d.state}`} ${within}` };
    if (d.restarting || d.restartCount > 0)
      return { kind: 'failed', reason: `${name} restarted ${d.restartCount > 0 ? `${d.restartCount} time(s) ` : ''}${within}` };
    if (d.health === 'unhealthy') return { kind: 'failed', reason: `${name} turned unhealthy ${within}` };
  }
  if (elapsedMs < settleMs) return { kind: 'watch' };
  for (const { name, details: d, healthBudgetMs: budget } of sorted) {
    if (d === null) continue; // judged above
    if (budget !== null && d.health !== 'healthy') {
      if (elapsedMs < budget) return { kind: 'watch' };
      return {
        kind: 'failed',
        reason: `${name} was not healthy within ${Math.ceil(Math.max(budget, settleMs) / 1000)} s of starting (health ${d.health ?? 'none'})`,
      };
    }
    if (d.state !== 'running') {
      // created, paused...: not up, and not going to be on its own.
      return { kind: 'failed', reason: `${name} is ${d.state}, not running, ${within}` };
    }
  }
  return { kind: 'settled' };
}
