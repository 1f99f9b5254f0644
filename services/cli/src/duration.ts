/**
 * `--timeout`: seconds (`90`, `1.5`) or a duration with units (`15s`, `2m`, `1h30m`, `500ms`).
 * Pure: the caller turns `null` into a usage error.
 */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** The longest a timer can wait (setTimeout's limit, ~24.8 days). */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** Milliseconds, or null when `text` is not a duration above zero and within MAX_DURATION_MS. */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(t)) ms = Number(t) * 1000;
  else {
    if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(t)) return null;
    ms = 0;
    for (const [, n, unit] of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  ms = Math.round(ms);
  return ms >= 1 && ms <= MAX_DURATION_MS ? ms : null;
}

/** A duration for people: `90s` -> "1m30s", `500` ms -> "500ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${rest > 0 || s === 0 ? `${rest}s` : ''}`;
}
