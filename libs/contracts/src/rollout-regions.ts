import { z } from 'zod';
import { HUB_DOMAIN } from './names.ts';
import type { RolloutHostState } from './progress.ts';

/**
 * A rollout's progress per region: the rollout's own counts (expected, reported, applied, failed,
 * superseded, pending, offline, joined: the same words, the same rules), over the hosts of each
 * region. Hosts outside any region count under `hub`, which no region may be called, so the regions'
 * counts always add up to the rollout's.
 */
export const regionCountsSchema = z.object({
  expected: z.number().int().min(0),
  reported: z.number().int().min(0),
  applied: z.number().int().min(0),
  failed: z.number().int().min(0),
  superseded: z.number().int().min(0),
  pending: z.number().int().min(0),
  offline: z.number().int().min(0),
  joined: z.number().int().min(0),
});
export type RegionCounts = z.infer<typeof regionCountsSchema>;

/** Region name (or `hub`) -> its hosts' counts; a region without a host of the rollout is absent. */
export const rolloutRegionsSchema = z.record(z.string(), regionCountsSchema);
export type RolloutRegions = z.infer<typeof rolloutRegionsSchema>;

/** One host of a rollout (or `hosts` of them alike): its state, whether it was expected, its region. */
export interface RolloutHostRegion {
  region: string | null;
  expected: boolean;
  state: RolloutHostState;
  /** How many hosts this row stands for (a grouped query's count); default 1. */
  hosts?: number;
}

export const EMPTY_REGION_COUNTS: Readonly<RegionCounts> = Object.freeze({
  expected: 0,
  reported: 0,
  applied: 0,
  failed: 0,
  superseded: 0,
  pending: 0,
  offline: 0,
  joined: 0,
});

/** What one host adds to its region's counts (the rules of the rollout's totals, rollout-progress.ts in libs/db). */
function countsOf(h: RolloutHostRegion): RegionCounts {
  const reported = h.state === 'applied' || h.state === 'failed' || h.state === 'superseded';
  return {
    expected: h.expected ? 1 : 0,
    reported: reported ? 1 : 0,
    applied: h.state === 'applied' ? 1 : 0,
    failed: h.state === 'failed' ? 1 : 0,
    superseded: h.state === 'superseded' ? 1 : 0,
    pending: h.state === 'pending' ? 1 : 0,
    offline: h.state === 'offline' ? 1 : 0,
    joined: reported && !h.expected ? 1 : 0,
  };
}

const FIELDS = Object.keys(EMPTY_REGION_COUNTS) as (keyof RegionCounts)[];

/** Per region (`hub` for hosts outside any), in order of first appearance. */
export function rolloutRegions(hosts: readonly RolloutHostRegion[]): RolloutRegions {
  const out: RolloutRegions = {};
  for (const h of hosts) {
    const n = h.hosts ?? 1;
    if (n <= 0) continue;
    const key = h.region ?? HUB_DOMAIN;
    const sum = out[key] ?? { ...EMPTY_REGION_COUNTS };
    const add = countsOf(h);
    for (const f of FIELDS) sum[f] += add[f] * n;
    out[key] = sum;
  }
  return out;
}

/** The counts of every region together (what the rollout's totals are). */
export function sumRegions(regions: RolloutRegions): RegionCounts {
  const total = { ...EMPTY_REGION_COUNTS };
  for (const c of Object.values(regions)) for (const f of FIELDS) total[f] += c[f];
  return total;
}
