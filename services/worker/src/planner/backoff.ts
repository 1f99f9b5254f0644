/**
 * When to try again: pure functions of what happened so far, so the worker's timers hold no policy
 * and the policy is tested without waiting.
 */

/** `baseMs`, doubled after each failure in a row, never more than `maxMs` (nor less than `baseMs`). */
export function backoffDelay(baseMs: number, failures: number, maxMs: number): number {
  const cap = Math.max(baseMs, maxMs);
  if (failures <= 0) return baseMs;
  // 2 ** 40 already exceeds any cap in ms: no overflow to Infinity for long outages.
  return Math.min(cap, baseMs * 2 ** Math.min(failures, 40));
}

/** How long to wait before the next reconcile of an app, after `failures` failed ones in a row. */
export function reconcileDelay(intervalMs: number, failures: number, maxMs: number): number {
  return backoffDelay(intervalMs, failures, maxMs);
}

/** What the worker remembers about the restarts of one unhealthy container. */
export interface RestartRecord {
  /** Restarts since the container was last seen healthy. */
  restarts: number;
  /** When the last one was made (ms since the epoch). */
  lastAt: number;
}

/**
 * The earliest time an unhealthy container may be restarted again: at once the first time, then
 * `baseMs` after the last restart, doubling with each restart that did not make it healthy, up to
 * `maxMs`. A container that keeps failing its healthcheck is restarted ever less often instead of at
 * every health check.
 */
export function nextRestartAllowedAt(record: RestartRecord | undefined, baseMs: number, maxMs: number): number {
  if (record === undefined || record.restarts <= 0) return Number.NEGATIVE_INFINITY;
  return record.lastAt + backoffDelay(baseMs, record.restarts - 1, maxMs);
}
