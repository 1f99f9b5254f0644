import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { isMissedHeartbeats } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';

/** What a durable consumer's reader (an app's runner, the device group's follower) brings to the loop. */
export interface ConsumeOneByOne {
  /** Looks the consumer up (asking the control plane for it when missing); throws to back off. */
  bind(): Promise<Consumer>;
  /** Handles one message to the end (acked, nak'd or terminated); a throw backs off. */
  handle(m: JsMsg): Promise<void>;
  stopping(): boolean;
  /** The fetch going on (null between two), so that a stop can close it at once. */
  onFetch(batch: ConsumerMessages | null): void;
  fetchExpiresMs: number;
  /** The wait after the n-th failure in a row. */
  backoffMs(failures: number): number;
  sleep(ms: number): Promise<void>;
  log: Logger;
  /** Logged with each failure, before the wait. */
  failure: string;
}

/**
 * Reads a durable consumer one message at a time until stopped: each message is handled to the end
 * before the next is fetched (a host applies an app's revisions, and a group's messages, in order).
 *
 *   bind ──▶ fetch one ──▶ handle ──▶ fetch one ...
 *     ▲  missed heartbeats (a reconnect for new rights, a long action between two fetches, the
 *     │  consumer gone with its stream): bind again at once, no backoff
 *     └─ any other failure: bind again after backoffMs(failures in a row)
 *
 * A message that arrives while stopping is nak'd: the next start gets it again.
 */
export async function consumeOneByOne(l: ConsumeOneByOne): Promise<void> {
  let failures = 0;
  let consumer: Consumer | null = null;
  while (!l.stopping()) {
    try {
      consumer ??= await l.bind();
      const batch = await consumer.fetch({ max_messages: 1, expires: l.fetchExpiresMs });
      l.onFetch(batch);
      try {
        for await (const m of batch) {
          if (l.stopping()) {
            m.nak();
            continue;
          }
          await l.handle(m);
        }
      } catch (err) {
        if (!isMissedHeartbeats(err)) throw err;
        consumer = null;
      }
      l.onFetch(null);
      failures = 0;
    } catch (err) {
      l.onFetch(null);
      if (l.stopping()) break;
      failures += 1;
      consumer = null; // it may have been deleted (or forgotten): look it up again
      const delay = l.backoffMs(failures);
      l.log.warn({ err, delayMs: delay }, l.failure);
      await l.sleep(delay);
    }
  }
}
