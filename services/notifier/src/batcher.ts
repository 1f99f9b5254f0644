/**
 * Gathers items into batches written one at a time, in order, a write starting at most once every
 * `maxWaitMs` unless a batch is full (or flush() asks). An item that arrives when no write has
 * started for `maxWaitMs` is written at once (in the next turn of the event loop); the items after it
 * wait for the next start, `maxWaitMs` after the one before, or at once when the write before took
 * longer. So the first result of a rollout is written without waiting, and under load writes are
 * at most 1000 / maxWaitMs a second, their batches growing with the load (up to `maxSize` each).
 *
 *   add() ──buffer full──▶ flush() (the caller awaits its items' write: it stops pulling meanwhile)
 *     │
 *     └── schedule(): a timer for the next start: now if urgent (full, flushed) or the last start
 *         was maxWaitMs ago, else when it will be ──▶ start(): write up to maxSize, then schedule()
 *
 * `write` must not throw: it decides what a failure means for its items (the notifier naks them).
 */
export interface BatcherOptions<T> {
  maxSize: number;
  maxWaitMs: number;
  write(items: T[]): Promise<void>;
}

export class Batcher<T> {
  readonly #opts: BatcherOptions<T>;
  #buffer: T[] = [];
  #timer: NodeJS.Timeout | null = null;
  #writing = false;
  #lastStart = Number.NEGATIVE_INFINITY;
  /** Items ever added, and items whose write has ended: flush() waits for the second to reach the first. */
  #added = 0;
  #written = 0;
  /** Items up to this count are written without waiting (flush(), a full batch). */
  #urgentUpTo = 0;
  #waiters: Array<{ upTo: number; resolve: () => void }> = [];

  constructor(opts: BatcherOptions<T>) {
    if (!(opts.maxSize >= 1)) throw new RangeError('maxSize must be at least 1');
    if (!(opts.maxWaitMs >= 0)) throw new RangeError('maxWaitMs must be 0 or more');
    this.#opts = opts;
  }

  /** Items waiting for a write. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Adds an item; resolves at once, or, when it fills a batch, once that batch is written. */
  add(item: T): Promise<void> {
    this.#buffer.push(item);
    this.#added++;
    if (this.#buffer.length >= this.#opts.maxSize) return this.flush();
    this.#schedule();
    return Promise.resolve();
  }

  /** Writes what is buffered now without waiting; resolves when every item added so far has been written. */
  flush(): Promise<void> {
    const upTo = this.#added;
    this.#urgentUpTo = Math.max(this.#urgentUpTo, upTo);
    this.#schedule();
    if (this.#written >= upTo) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ upTo, resolve }));
  }

  /** Sets the next start. From add(), a start due now waits for the next turn (to take what else this turn adds). */
  #schedule(afterWrite = false): void {
    if (this.#writing || this.#buffer.length === 0) return;
    const urgent = this.#written < this.#urgentUpTo;
    const wait = urgent ? 0 : Math.max(0, this.#lastStart + this.#opts.maxWaitMs - performance.now());
    if (this.#timer !== null) {
      if (!urgent) return; // the next start is set already
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (afterWrite && wait === 0) void this.#start();
    else this.#timer = setTimeout(() => void this.#start(), wait);
  }

  async #start(): Promise<void> {
    this.#timer = null;
    if (this.#writing || this.#buffer.length === 0) return;
    this.#writing = true;
    const items = this.#buffer.splice(0, this.#opts.maxSize);
    this.#lastStart = performance.now();
    try {
      await this.#opts.write(items);
    } catch {
      // A throwing `write` breaks its contract; the batches after it are written all the same.
    }
    this.#written += items.length;
    this.#writing = false;
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) {
      if (w.upTo <= this.#written) w.resolve();
      else this.#waiters.push(w);
    }
    this.#schedule(true);
  }
}
