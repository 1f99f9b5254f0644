import { ROLLOUT_STATES, type RolloutState } from '@nebula/contracts';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The rollout controller's series: rollouts in waves by state, wave durations, automatic rollbacks. */
export interface RolloutMetrics {
  waveFinished(seconds: number): void;
  rolledBack(): void;
  readonly rollbacks: number;
}

export function createRolloutMetrics(registry: Registry, stateCounts: () => Promise<Record<RolloutState, number>>): RolloutMetrics {
  new Gauge({
    name: 'nebula_rollouts',
    help: 'Rollouts in waves by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      try {
        const c = await stateCounts();
        for (const s of ROLLOUT_STATES) this.set({ state: s }, c[s]);
      } catch {
        // PostgreSQL unreachable: /health says so; keep the last values.
      }
    },
  });
  const waves = new Histogram({
    name: 'nebula_rollout_wave_seconds',
    help: 'Duration of rollout waves, from their start to the decision that ended them (next wave, success, failure)',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const rollbacks = new Counter({
    name: 'nebula_rollout_automatic_rollbacks_total',
    help: 'Rollback revisions made by the rollout controller after a failure budget was exceeded',
    registers: [registry],
  });
  let n = 0;
  return {
    waveFinished(seconds) {
      waves.observe(Math.max(0, seconds));
    },
    rolledBack() {
      n++;
      rollbacks.inc();
    },
    get rollbacks() {
      return n;
    },
  };
}
