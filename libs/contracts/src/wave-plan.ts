import { createHash } from 'node:crypto';

/**
 * Which hosts get a rollout in waves, and when (pure). Hosts are placed by sha256(app + "\0" + host):
 * a host's place depends only on itself and the app, so the same hosts are the canaries of every
 * rollout of an app, and hosts joining or leaving never move one host relative to another.
 *
 *   members (n) ──hostOrder──▶ h1 h2 h3 ... hn
 *   waves [5, 25, 100]        └w1┘└──w2──┘└──── w3 ────┘   wave k: the first ceil(p_k * n / 100), cumulative
 *
 * A wave that adds no host is dropped, so every wave has at least one host of its own; with n = 0
 * there is no wave at all.
 */

function placeOf(app: string, host: string): string {
  return createHash('sha256').update(`${app}\u0000${host}`).digest('hex');
}

/** The members in rollout order (ties, which sha256 never gives, broken by host id). */
export function hostOrder(app: string, hosts: readonly string[]): string[] {
  const keyed = [...new Set(hosts)].map((h) => ({ h, k: placeOf(app, h) }));
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
  return keyed.map((x) => x.h);
}

export interface PlannedWave {
  /** 1-based, after dropped waves are left out. */
  wave: number;
  /** The strategy's cumulative percent this wave reaches. */
  percent: number;
  /** This wave's own hosts (not the earlier waves'), in rollout order. */
  hosts: string[];
}

/** Hosts reached once the wave of cumulative `percent` is out: rounded up, never zero (n > 0), at most n. */
export function cumulativeSize(n: number, percent: number): number {
  if (n === 0) return 0;
  // Rounded to 1e-9 first: 7 * 100 / 100 must not turn into 7.000000000000001 and then 8.
  const exact = Math.round(((percent * n) / 100) * 1e9) / 1e9;
  return Math.min(n, Math.max(1, Math.ceil(exact)));
}

export function planWaves(app: string, members: readonly string[], waves: readonly number[]): PlannedWave[] {
  const order = hostOrder(app, members);
  const out: PlannedWave[] = [];
  let reached = 0;
  for (const percent of waves) {
    const size = cumulativeSize(order.length, percent);
    if (size <= reached) continue;
    out.push({ wave: out.length + 1, percent, hosts: order.slice(reached, size) });
    reached = size;
  }
  // A strategy always ends at 100; a list that does not still reaches every member.
  if (reached < order.length) out.push({ wave: out.length + 1, percent: 100, hosts: order.slice(reached) });
  return out;
}
