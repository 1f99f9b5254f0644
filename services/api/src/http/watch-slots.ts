/**
 * Open watches (`rollouts.watch` event streams) per identity, bounded: each holds a connection and
 * re-reads PostgreSQL every poll, so one client looping on reconnects must not take the API's
 * capacity. Pure bookkeeping; the HTTP layer acquires a slot per stream and releases it when the
 * response closes.
 */
export class WatchSlots {
  readonly limit: number;
  readonly #open = new Map<string, number>();
  constructor(limit: number) {
    this.limit = limit;
  }

  /** A release function (idempotent), or null when `who` already has `limit` watches open. */
  tryAcquire(who: string): (() => void) | null {
    const n = this.#open.get(who) ?? 0;
    if (n >= this.limit) return null;
    this.#open.set(who, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(who) ?? 1) - 1;
      if (left <= 0) this.#open.delete(who);
      else this.#open.set(who, left);
    };
  }

  openFor(who: string): number {
    return this.#open.get(who) ?? 0;
  }

  get total(): number {
    let sum = 0;
    for (const n of this.#open.values()) sum += n;
    return sum;
  }
}
