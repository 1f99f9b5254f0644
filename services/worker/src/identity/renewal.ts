/**
 * When to renew a credential: at two thirds of its lifetime, counted from when it was received (the
 * host's own clock on both ends, so a skew between host and control plane does not matter).
 */
export function renewalDelayMs(c: { receivedAt: number; expiresAt: number; now: number }): number {
  const lifetime = Math.max(0, c.expiresAt - c.receivedAt);
  return Math.max(0, c.receivedAt + (lifetime * 2) / 3 - c.now);
}

/** After `failures` failed renewals in a row: base, 2 base, 4 base... up to max. */
export function retryDelayMs(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 20));
}

/**
 * Before join try `attempt + 1`: the backoff of retryDelayMs, of which a random half is kept
 * (`random` in [0, 1)), so a fleet that the control plane turned away at once comes back spread out
 * over that time rather than all in the same second again.
 */
export function joinRetryDelayMs(attempt: number, baseMs: number, maxMs: number, random: number): number {
  const d = retryDelayMs(attempt, baseMs, maxMs);
  return Math.round(d / 2 + (d / 2) * Math.min(Math.max(random, 0), 1));
}
