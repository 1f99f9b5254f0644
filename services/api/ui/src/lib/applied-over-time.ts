/**
 * The points of the "hosts applied over time" chart (pure): one step per distinct report time,
 * counting the hosts applied by then, from the rollout's start. Hosts without a time are left out.
 */
export interface Point {
  /** Milliseconds since the start. */
  t: number;
  applied: number;
}

export function appliedOverTime(startIso: string, hosts: ReadonlyArray<{ state: string; reported_at: string | null }>): Point[] {
  const start = Date.parse(startIso);
  const times = hosts
    .filter((h) => h.state === 'applied' && h.reported_at !== null)
    .map((h) => Math.max(0, Date.parse(h.reported_at ?? '') - start))
    .filter((t) => Number.isFinite(t))
    .sort((a, b) => a - b);
  const points: Point[] = [{ t: 0, applied: 0 }];
  times.forEach((t, i) => {
    const last = points[points.length - 1];
    if (last && last.t === t) last.applied = i + 1;
    else points.push({ t, applied: i + 1 });
  });
  return points;
}
