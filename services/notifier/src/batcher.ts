/**
 * Gathers items into batches: a batch is written when it is full or when the oldest item in it has
 * waited `maxWaitMs`, whichever comes first. Writes run one at a time, in order.
 *
 *   add() ──buffer full──▶ flush() (the caller awaits it: it stops pulling while a batch is written)
 *     │
 *     └── first item of a batch arms a timer ──maxWaitMs──▶ flush() in the background
 *
 * At most two batches are in memory: one being written and one filling (which, once full, waits for
 * the first). `write` must not throw: it decides what a failure means for its items (the notifier
 * naks them).
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
  #chain: Promise<void> = Promise.resolve();

  constructor(opts: BatcherOptions<T>) {
    if (!(opts.maxSize >= 1)) throw new RangeError('maxSize must be at least 1');
    this.#opts = opts;
  }

  /** Items waiting for the next write. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Adds an item; resolves at once, or once the (then full) batch is written. */
  add(item: T): Promise<void> {
    this.#buffer.push(item);
    if (this.#buffer.length >= this.#opts.maxSize) return this.flush();
    if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        void this.flush();
      }, this.#opts.maxWaitMs);
    }
    return Promise.resolve();
  }

  /** Writes what is buffered; resolves when every write so far has finished. */
  flush(): Promise<void> {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const items = this.#buffer;
    if (items.length > 0) {
      this.#buffer = [];
      const write = this.#opts.write;
      // A throwing `write` breaks its contract; keep the chain alive for the batches after it.
      this.#chain = this.#chain.then(() => write(items)).catch(() => undefined);
    }
    return this.#chain;
  }
}
