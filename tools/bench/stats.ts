/** Summary statistics for benchmark samples. */
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN, p25: quantile(s, 0.25), p75: quantile(s, 0.75) };
}

/** "1.23 s (1.10–1.40)" style: median with min–max spread. */
export function fmtSeconds(s: Summary, digits = 2): string {
  return `${(s.median / 1000).toFixed(digits)} s (${(s.min / 1000).toFixed(digits)}–${(s.max / 1000).toFixed(digits)})`;
}

export function fmtMs(s: Summary, digits = 0): string {
  return `${s.median.toFixed(digits)} ms (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}
