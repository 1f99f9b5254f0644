import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { ensureConsumer, InvalidMessageError, isMissedHeartbeats, NewerVersionError } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import type { Verdict } from './authenticate.ts';
import { Batcher } from './batcher.ts';
import type { NotifierMetrics, StreamLabel } from './metrics.ts';
import type { CompiledOptions } from './options.ts';
import { rateLimited } from './rate-limited.ts';

/**
 * One durable pull consumer feeding batched writes. Every notifier replica binds the same durable,
 * so JetStream hands each message to one of them; a message is acked only after the transaction that
 * wrote it committed, so a crash before that means a redelivery (the writes are idempotent), never a
 * loss.
 *
 *   new ──start()──▶ running: pull ─▶ authenticate ─┬─ not its host's ─▶ ack, count, drop (never written)
 *                      │                             └─ ok ─▶ decode ─┬─ invalid, or newer version ─▶ term, count (never retried)
 *                      │                                              └─ ok ─▶ batch ─▶ write (one transaction)
 *                      │                                   ├─ committed ─▶ ack each
 *                      │                                   └─ failed ─▶ retry one by one; still failing ─▶ nak(delay)
 *                      │ pulling failed (consumer deleted, server away): bind again after a pause
 *                      ▼
 *                    stop(): no new pull ─▶ the open one ends (≤ 1 s), its messages processed ─▶ last flush ─▶ stopped
 */
export interface StreamConsumerSpec<T> {
  label: StreamLabel;
  stream: string;
  durable: string;
  filterSubject: string;
  /**
   * Whether the message comes from the host its subject names (see authenticate.ts); synchronous
   * when the host's key is in memory. A rejection (a key that could not be read) retries the message.
   */
  authenticate(msg: JsMsg): Verdict | Promise<Verdict>;
  /** Parses and checks one message; throws InvalidMessageError for one that can never be processed. */
  decode(msg: JsMsg): T;
  /** Writes a batch in one transaction; returns the rows inserted or changed. */
  write(items: Received<T>[]): Promise<number>;
  /** A label of its own for what a message is, on the rejections counter (host events: group, cron, prune). */
  kindOf?(subject: string): string;
}

/**
 * A decoded message with the server's word on when it arrived. `ns` is the JetStream message
 * timestamp (set by the server when it stored the message, kept on redelivery): the one clock the
 * notifier writes, so a worker's skewed clock never decides whether its host is online or which of
 * its results is newest. `seq` (the stream sequence) breaks ties.
 */
export interface Received<T> {
  value: T;
  /** Nanoseconds since the epoch, server time. */
  ns: bigint;
  seq: number;
}

/** Orders two received messages by server time, then stream sequence. */
export function compareReceived(a: Pick<Received<unknown>, 'ns' | 'seq'>, b: Pick<Received<unknown>, 'ns' | 'seq'>): number {
  return a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.seq - b.seq;
}

/** A server timestamp as PostgreSQL stores it: ISO 8601 with microseconds (its precision). */
export function isoMicros(ns: bigint): string {
  const micros = ns / 1000n;
  const ms = Number(micros / 1000n);
  const iso = new Date(ms).toISOString(); // ...SS.mmmZ
  return `${iso.slice(0, -1)}${String(micros % 1000n).padStart(3, '0')}Z`;
}

/** How long one pull request waits for messages; also the longest stop() waits for the last one. */
const PULL_EXPIRES_MS = 1000;

interface Entry<T> {
  msg: JsMsg;
  item: Received<T>;
}

export class StreamConsumer<T> {
  readonly #spec: StreamConsumerSpec<T>;
  readonly #opts: CompiledOptions;
  readonly #log: Logger;
  readonly #metrics: NotifierMetrics;
  readonly #batcher: Batcher<Entry<T>>;
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  readonly #warnDropped = rateLimited(10_000);
  readonly #warnNewer = rateLimited(10_000);

  constructor(spec: StreamConsumerSpec<T>, opts: CompiledOptions, log: Logger, metrics: NotifierMetrics) {
    this.#spec = spec;
    this.#opts = opts;
    this.#log = log.child({ stream: spec.stream, durable: spec.durable });
    this.#metrics = metrics;
    this.#batcher = new Batcher<Entry<T>>({ maxSize: opts.batchSize, maxWaitMs: opts.flushIntervalMs, write: (entries) => this.#write(entries) });
  }

  /** Creates or updates the durable, then starts pulling in the background. */
  async start(js: JetStreamClient, jsm: JetStreamManager): Promise<void> {
    await this.#ensureConsumer(jsm);
    this.#loop = this.#run(js, jsm);
  }

  // Not `consumers.add` alone: an upsert on NATS 2.9, but a create on 2.10, which fails once the
  // durable exists with another ack wait or batch size (a restart with new settings).
  async #ensureConsumer(jsm: JetStreamManager): Promise<void> {
    const { outcome } = await ensureConsumer(
      jsm,
      this.#spec.stream,
      {
        durable_name: this.#spec.durable,
        filter_subject: this.#spec.filterSubject,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: this.#opts.ackWaitMs * 1_000_000,
        max_ack_pending: this.#opts.maxAckPending,
      },
      ['filter_subject', 'ack_wait', 'max_ack_pending'],
    );
    if (outcome !== 'unchanged') this.#log.info(`consumer ${outcome}`);
  }

  async #run(js: JetStreamClient, jsm: JetStreamManager): Promise<void> {
    let bound = true; // start() has just ensured the consumer
    while (!this.#stopping) {
      let pause = true;
      try {
        if (!bound) await this.#ensureConsumer(jsm);
        bound = false;
        const consumer = await js.consumers.get(this.#spec.stream, this.#spec.durable);
        while (!this.#stopping) {
          // One pull request at a time, never cancelled: a request cancelled on the client while the
          // server still holds it would have messages delivered to nobody, stuck until ack_wait.
          // Messages are handed over as they arrive; the batcher's timer writes partial batches.
          const batch = await consumer.fetch({ max_messages: this.#opts.batchSize, expires: PULL_EXPIRES_MS });
          for await (const msg of batch) await this.#accept(msg);
        }
      } catch (err) {
        if (this.#stopping) break;
        if (isMissedHeartbeats(err)) {
          // A busy second, or the consumer gone with its stream: bind again now (hosts would look
          // offline during a pause), ensuring the consumer exists.
          this.#log.debug('pull request ended by missed heartbeats; binding again');
          pause = false;
        } else {
          this.#log.error({ err }, 'consumer failed; binding again');
        }
      }
      if (!this.#stopping && pause) await this.#pause(this.#opts.retryDelayMs);
    }
    await this.#batcher.flush();
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  async #accept(msg: JsMsg): Promise<void> {
    let verdict: Verdict;
    try {
      const v = this.#spec.authenticate(msg);
      verdict = v instanceof Promise ? await v : v;
    } catch (err) {
      this.#log.warn({ err, subject: msg.subject, seq: msg.seq }, "the sender's key could not be read; will be redelivered");
      msg.nak(this.#opts.retryDelayMs);
      this.#metrics.retried(this.#spec.label, 1);
      return;
    }
    if (!verdict.ok) {
      // Acked, not termed: nothing about it is worth keeping, and the stream must not fill up with
      // forgeries. The body is never logged: it is what an attacker chose.
      msg.ack();
      this.#metrics.rejected(this.#spec.label, verdict.reason, this.#spec.kindOf?.(msg.subject));
      const { reason, host } = verdict;
      this.#warnDropped(reason, (skipped) =>
        this.#log.warn({ reason, host, subject: msg.subject, seq: msg.seq, skipped }, 'message not signed by the host it names: dropped'),
      );
      return;
    }
    let item: Received<T>;
    try {
      item = { value: this.#spec.decode(msg), ns: msg.timestampNanos, seq: msg.seq };
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      // No reason text: NATS 2.9 does not understand `+TERM <reason>` and would redeliver the message.
      msg.term();
      if (err instanceof NewerVersionError) {
        // A worker upgraded before the control plane: dropped rather than guessed at. Its next
        // heartbeat says the same; its result is not recorded.
        this.#metrics.rejected(this.#spec.label, 'newer_version', this.#spec.kindOf?.(msg.subject));
        this.#warnNewer(String(err.version), (skipped) =>
          this.#log.warn(
            { subject: msg.subject, seq: msg.seq, version: err.version, understood: err.understood, skipped },
            `message schema version ${err.version} is newer than this notifier understands (${err.understood}): terminated, not written. Upgrade the control plane before the workers`,
          ),
        );
        return;
      }
      this.#log.warn({ err, subject: msg.subject, seq: msg.seq }, 'invalid message terminated');
      this.#metrics.rejected(this.#spec.label, 'invalid', this.#spec.kindOf?.(msg.subject));
      return;
    }
    await this.#batcher.add({ msg, item });
  }

  async #write(entries: Entry<T>[]): Promise<void> {
    const started = performance.now();
    try {
      const changed = await this.#spec.write(entries.map((e) => e.item));
      for (const e of entries) e.msg.ack();
      this.#metrics.batch(this.#spec.label, entries.length, (performance.now() - started) / 1000, changed);
      return;
    } catch (err) {
      this.#log.error({ err, size: entries.length }, 'batch write failed');
    }
    // One bad message must not hold back the others: write them one by one; nak only what still fails.
    for (const e of entries) {
      const t = performance.now();
      try {
        const changed = await this.#spec.write([e.item]);
        e.msg.ack();
        this.#metrics.batch(this.#spec.label, 1, (performance.now() - t) / 1000, changed);
      } catch (err) {
        this.#log.warn({ err, subject: e.msg.subject, seq: e.msg.seq }, 'write failed; will be redelivered');
        e.msg.nak(this.#opts.retryDelayMs);
        this.#metrics.retried(this.#spec.label, 1);
      }
    }
  }

  /** True when the server holds less than one batch of messages not yet delivered to this durable. */
  async caughtUp(jsm: JetStreamManager): Promise<boolean> {
    const info = await jsm.consumers.info(this.#spec.stream, this.#spec.durable);
    return info.num_pending < this.#opts.batchSize;
  }

  /** Stops pulling, writes and acks what was already delivered; resolves when nothing is in flight. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    await this.#batcher.flush();
  }
}
