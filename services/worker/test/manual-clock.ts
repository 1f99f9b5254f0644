import type { Timers } from '../src/cron/timers.ts';

/** Lets every promise chain that does not wait for a real timer run to its end. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

/**
 * A clock for the cron scheduler's tests: timers fire only in `advance`, in order, with every
 * promise chain settled between them, so minutes of schedule take milliseconds. `monotonic` is what
 * timers and durations go by; `now` (the wall clock) is it plus a skew that `jump` moves, as a host
 * clock set forward or back moves the wall clock and not the timers.
 */
export class ManualClock {
  private mono = 0;
  private skew: number;
  private seq = 0;
  private readonly queue = new Map<number, { at: number; fn: () => void }>();

  constructor(wallStartMs: number) {
    this.skew = wallStartMs;
  }

  readonly now = (): number => this.mono + this.skew;
  readonly monotonic = (): number => this.mono;

  readonly timers: Timers = {
    setTimeout: (fn, ms) => {
      this.seq += 1;
      this.queue.set(this.seq, { at: this.mono + Math.max(0, ms), fn });
      return this.seq;
    },
    clearTimeout: (h) => {
      this.queue.delete(h as number);
    },
  };

  /** Moves time on by `ms`, firing the timers due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.mono + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.queue) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.queue.delete(next[0]);
      this.mono = Math.max(this.mono, next[1].at);
      next[1].fn();
    }
    this.mono = end;
    await settle();
  }

  /** Sets the wall clock forward (or back, negative) without moving the timers. */
  jump(ms: number): void {
    this.skew += ms;
  }

  get pending(): number {
    return this.queue.size;
  }
}
