import { z } from 'zod';

/**
 * How a change reaches an app's hosts: in waves, each a cumulative percent of the hosts that serve the
 * app when the rollout starts (its members), in a stable order (the same hosts are the canaries of
 * every rollout of an app). An app without a strategy gets every change in one wave of 100%.
 *
 *   wave k starts ──its hosts apply──▶ all reported ──bake_seconds healthy──▶ wave k+1 (or succeeded)
 *        │                                                     │
 *        └──── failed hosts reach the budget (any time) ───────┴──▶ on_failure: rollback | pause
 *
 * The budget: abort once failed hosts >= `max_failed_hosts`, or once at least `min_hosts_tried` hosts
 * have reported and failed hosts >= `max_failed_percent` of the hosts that reported so far. Hosts are
 * counted, not attempts. A host that got its wave's change and did not report within
 * `host_timeout_seconds` counts as failed. With neither limit set, no failure is tolerated: the first
 * failed host stops the rollout. Hosts offline when their wave starts are outside the budget.
 */

export const ROLLOUT_FAILURE_ACTIONS = ['rollback', 'pause'] as const;

export const MAX_WAVES = 20;

export const rolloutStrategySchema = z.strictObject({
  /** Cumulative percents of the members: strictly increasing, ending at 100. */
  waves: z
    .array(z.number().gt(0, 'a wave is more than 0%').max(100, 'a wave is at most 100%'))
    .min(1, 'at least one wave')
    .max(MAX_WAVES, `at most ${MAX_WAVES} waves`)
    .refine((w) => w.every((p, i) => i === 0 || p > (w[i - 1] ?? 0)), 'waves must be strictly increasing (cumulative percents)')
    .refine((w) => w.at(-1) === 100, 'the last wave must be 100'),
  /** Seconds a wave whose hosts all applied must stay healthy before the next one starts. */
  bake_seconds: z
    .number()
    .int()
    .min(0)
    .max(7 * 86_400)
    .default(0),
  /** Abort once this percent of the hosts that reported so far failed (after `min_hosts_tried`). */
  max_failed_percent: z.number().min(0).max(100).nullable().default(null),
  /** Abort once this many hosts failed. */
  max_failed_hosts: z.number().int().min(1).nullable().default(null),
  /** `max_failed_percent` is judged only once this many hosts have reported. */
  min_hosts_tried: z.number().int().min(1).default(1),
  /** What an abort does: a new revision with the last good config to every host (`rollback`), or a pause. */
  on_failure: z.enum(ROLLOUT_FAILURE_ACTIONS).default('rollback'),
  /** A host that got its wave's change and has not reported after this long counts as failed. */
  host_timeout_seconds: z.number().int().min(1).max(86_400).default(300),
  /** false: the rollout pauses after its first wave until promoted. */
  auto_promote: z.boolean().default(true),
});

export type RolloutStrategyInput = z.input<typeof rolloutStrategySchema>;
export type RolloutStrategy = z.output<typeof rolloutStrategySchema>;

/** What an app without a strategy gets: one wave of 100%, no bake, no budget. */
export const ALL_AT_ONCE: RolloutStrategy = {
  waves: [100],
  bake_seconds: 0,
  max_failed_percent: null,
  max_failed_hosts: null,
  min_hosts_tried: 1,
  on_failure: 'pause',
  host_timeout_seconds: 300,
  auto_promote: true,
};
