/**
 * Failed attempts (joins and renewals, logins) per key (a source address, a user name), over a sliding window: after `maxFailures` in
 * `windowMs`, the address is refused (429) until its oldest failure leaves the window. Successes
 * do not count and do not clear failures. Pure bookkeeping: the caller passes the time, so tests
 * need no clock.
 *
 * Bounded: at most `maxKeys` addresses are tracked; the one whose newest failure is oldest goes
 * first (a flood of spoofed sources cannot grow it without end).
 */
export interface AttemptThrottleOptions {
  maxFailures: number;
  windowMs: number;
  maxKeys?: number;
}

export class AttemptThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;

  constructor(opts: AttemptThrottleOptions) {
    this.maxFailures = opts.maxFailures;
    this.windowMs = opts.windowMs;
    this.maxKeys = opts.maxKeys ?? 10_000;
  }

  private recent(key: string, now: number): number[] {
    return (this.failures.get(key) ?? []).filter((t) => t > now - this.windowMs);
  }

  /** Milliseconds until `key` may try again; 0 when it may now. Changes nothing. */
  blockedForMs(key: string, now: number): number {
    const times = this.recent(key, now);
    if (times.length < this.maxFailures) return 0;
    const oldest = times[times.length - this.maxFailures] ?? now;
    return Math.max(1, oldest + this.windowMs - now);
  }

  recordFailure(key: string, now: number): void {
    const times = this.recent(key, now);
    // Re-inserted last: Map order is the order of each key's newest failure.
    this.failures.delete(key);
    this.failures.set(key, [...times, now].slice(-this.maxFailures));
    while (this.failures.size > this.maxKeys) {
      const first = this.failures.keys().next().value;
      if (first === undefined) break;
      this.failures.delete(first);
    }
  }
}
