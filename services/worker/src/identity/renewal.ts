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
