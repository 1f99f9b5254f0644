import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ensureStream } from '@nebula/messaging';
import type { Publisher } from './db/outbox-relay.ts';

export class PublishError extends Error {
  override name = 'PublishError';
  /** NATS down, no JetStream, timeout: all pass; the relay retries. */
  readonly retryable = true;
}

/**
 * Publishes to JetStream with a message id (duplicates within the stream's window are dropped).
 * The APPS stream is ensured before the first publish and again after any failure, so a JetStream
 * that came back empty gets its stream back.
 */
export function jetStreamPublisher(nc: NatsConnection, timeoutMs = 2000): Publisher & { ensure(): Promise<void> } {
  const js = jetstream(nc, { timeout: timeoutMs });
  let ensured = false;
  return {
    async ensure() {
      await ensureStream(await jetstreamManager(nc, { timeout: timeoutMs }), 'apps');
      ensured = true;
    },
    async publish(subject, payload, msgId) {
      try {
        if (!ensured) {
          await ensureStream(await jetstreamManager(nc, { timeout: timeoutMs }), 'apps');
          ensured = true;
        }
        await js.publish(subject, payload, { msgID: msgId, timeout: timeoutMs });
      } catch (cause) {
        ensured = false;
        throw new PublishError(`publish to ${subject} failed`, { cause });
      }
    },
  };
}
