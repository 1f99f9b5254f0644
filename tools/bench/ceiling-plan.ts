/**
 * The decisions of the "ceiling" part (ceiling.ts), without any I/O: which steps to try, which
 * consumers to read at a step, the delivery figures of one rollout, and whether a step held.
 *
 *   planSteps ─▶ step 1 ─▶ measure ─▶ judgeStep(earlier, step) ─held─▶ step 2 ─▶ ...
 *                                                  └─degraded / failed─▶ stop: the ceiling lies
 *                                                                        between the last held step
 *                                                                        and this one
 */
import { quantile } from './stats.ts';

/**
 * `single`: one server, R1 stream; `cluster`: three servers, R3 stream whose consumers are R3 too
 * (what the code does today); `cluster-r1`: the same R3 stream with R1 host consumers (a cheaper
 * variant: a consumer lost with its server is made again when its host asks).
 */
export type Topology = 'single' | 'cluster' | 'cluster-r1';

export const TOPOLOGIES: readonly Topology[] = ['single', 'cluster', 'cluster-r1'];

/** Consumer counts to try, smallest first. A `--quick` run stays small enough for a busy 2-core machine. */
export function planSteps(topology: Topology, quick: boolean): number[] {
  if (topology === 'single') return quick ? [250, 1000] : [1000, 2500, 5000, 10_000, 20_000, 40_000];
  if (topology === 'cluster-r1') return quick ? [250, 1000] : [1000, 2500, 5000, 10_000, 20_000];
  return quick ? [100, 250] : [500, 1000, 2000, 4000, 8000];
}

/** Parses a `1000,2500,5000` list (an env knob): positive integers, made strictly increasing. */
export function parseSteps(text: string): number[] {
  const values = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const v = Number(s.replace(/_/g, ''));
      if (!Number.isInteger(v) || v <= 0) throw new Error(`step "${s}": expected a positive whole number of consumers`);
      return v;
    });
  return [...new Set(values)].sort((a, b) => a - b);
}

/**
 * Which of `n` consumers to read (indices, ascending): all of them up to `max`, else `max` of them
 * spread evenly, the first and the last included (the newest consumers are where trouble shows first).
 */
export function sampleIndices(n: number, max: number): number[] {
  if (n <= 0 || max <= 0) return [];
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  if (max === 1) return [n - 1];
  const out: number[] = [];
  for (let k = 0; k < max; k++) out.push(Math.round((k * (n - 1)) / (max - 1)));
  return out;
}

export interface Delivery {
  /** Consumers read and consumers that got the message before the deadline. */
  read: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  /** Until the last one read had it (NaN when some never did). */
  maxMs: number;
}

/**
 * The q-quantile (nearest rank) of `total` values of which `sorted` are the known ones, ascending;
 * the others count as later than any (a consumer that never got the message): NaN when the rank
 * falls among them.
 */
export function nearestRank(sorted: readonly number[], total: number, q: number): number {
  if (total <= 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * total));
  return rank <= sorted.length ? sorted[rank - 1]! : Number.NaN;
}

/** Figures of one rollout: per-consumer times from the publish to the message's arrival. */
export function deliveryOf(read: number, latenciesMs: readonly number[]): Delivery {
  const s = [...latenciesMs].sort((a, b) => a - b);
  return {
    read,
    delivered: s.length,
    p50Ms: nearestRank(s, read, 0.5),
    p99Ms: nearestRank(s, read, 0.99),
    maxMs: nearestRank(s, read, 1),
  };
}

/** What one step measured (a cluster's memory is the sum over its servers). */
export interface StepMeasure {
  consumers: number;
  /** Null when every consumer was created; else the first error. */
  createError: string | null;
  createMs: number;
  /** Server memory (RSS) with no consumer, and at this step. */
  baseRssBytes: number;
  rssBytes: number;
  /** Medians over the step's rollouts. */
  delivery: Delivery;
  cpuMsPerRollout: number;
  /** Null while every server runs. */
  serverDown: string | null;
  /** Null when every rollout of the step could be published and read; else what went wrong. */
  runError: string | null;
}

export interface Limits {
  /** A delivery p99 above this is degraded, whatever the step (ms). */
  p99Ms: number;
  /** p99 per consumer more than this many times the best earlier step's is degraded (super-linear growth). */
  p99GrowthPerConsumer: number;
  /** Memory per consumer more than this many times the first step's is degraded. */
  memoryGrowthPerConsumer: number;
  /** Below this p99 (ms), growth is not judged: a few ms of noise is no trend. */
  p99FloorMs: number;
}

export const DEFAULT_LIMITS: Limits = { p99Ms: 5000, p99GrowthPerConsumer: 3, memoryGrowthPerConsumer: 2, p99FloorMs: 250 };

export type Verdict = { kind: 'held' } | { kind: 'degraded'; reason: string } | { kind: 'failed'; reason: string };

export const memoryPerConsumer = (m: StepMeasure): number => Math.max(0, m.rssBytes - m.baseRssBytes) / Math.max(1, m.consumers);

/**
 * Failed: the servers could not take the consumers, one went down, or some consumer did not get the
 * message; degraded: it arrived, but later or at more memory per consumer than the step's size explains.
 */
export function judgeStep(earlier: readonly StepMeasure[], m: StepMeasure, limits: Limits = DEFAULT_LIMITS): Verdict {
  if (m.serverDown !== null) return { kind: 'failed', reason: m.serverDown };
  if (m.createError !== null) return { kind: 'failed', reason: `creating consumers: ${m.createError}` };
  if (m.runError !== null) return { kind: 'failed', reason: m.runError };
  const d = m.delivery;
  if (d.delivered < d.read) return { kind: 'failed', reason: `${d.read - d.delivered} of ${d.read} consumers read never got the message` };
  if (!Number.isFinite(d.p99Ms)) return { kind: 'failed', reason: 'no delivery figure' };
  if (d.p99Ms > limits.p99Ms) return { kind: 'degraded', reason: `delivery p99 ${Math.round(d.p99Ms)} ms > ${limits.p99Ms} ms` };
  const held = earlier.filter((e) => Number.isFinite(e.delivery.p99Ms) && e.consumers > 0);
  if (d.p99Ms > limits.p99FloorMs && held.length > 0) {
    const best = Math.min(...held.map((e) => Math.max(e.delivery.p99Ms, limits.p99FloorMs) / e.consumers));
    const now = d.p99Ms / m.consumers;
    if (now > best * limits.p99GrowthPerConsumer)
      return { kind: 'degraded', reason: `delivery p99 per consumer ${(now / best).toFixed(1)}x the best earlier step's` };
  }
  const first = held[0];
  if (first !== undefined) {
    const base = memoryPerConsumer(first);
    const now = memoryPerConsumer(m);
    if (base > 0 && now > base * limits.memoryGrowthPerConsumer)
      return { kind: 'degraded', reason: `memory per consumer ${(now / base).toFixed(1)}x the first step's` };
  }
  return { kind: 'held' };
}

/** The median of a few figures (NaN when empty or when one is NaN: a run that failed spoils the step). */
export function medianOf(values: readonly number[]): number {
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) return Number.NaN;
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}
