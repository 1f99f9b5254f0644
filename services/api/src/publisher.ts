import { JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import { headers, InvalidArgumentError, type NatsConnection, PermissionViolationError } from '@nats-io/transport-node';
import { SIGNATURE_HEADER, signMessage, verifyMessage } from '@nebula/bus-auth';
import { streams, subjects } from '@nebula/contracts';
import { ensureStream, isStreamNotFound, type StreamOptions } from '@nebula/messaging';
import type { Publisher } from './db/outbox-relay.ts';

export class PublishError extends Error {
  override name = 'PublishError';
  /**
   * False when publishing the same message again can never succeed (larger than the server's
   * max_payload, no permission on the subject): the relay dead-letters the row. True for the rest
   * (NATS down, no JetStream, the stream missing, timeouts): the relay retries that app with backoff.
   */
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.retryable = retryable;
  }
}

/** JetStream's "message size exceeds maximum allowed" (the stream's max_msg_size). */
const JS_MESSAGE_TOO_LARGE = 10054;

/**
 * Why a failed publish can never succeed, or null when it may (the default: an error we do not know
 * is retried, not thrown away). Pure: decides from the error (and its causes) alone.
 */
export function permanentPublishFailure(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return `permissions violation: ${e.message}`;
    if (e instanceof InvalidArgumentError && /max_payload/.test(e.message)) return `max payload exceeded: ${e.message}`;
    if (e instanceof JetStreamApiError && e.code === JS_MESSAGE_TOO_LARGE) return `max payload exceeded: ${e.message}`;
  }
  return null;
}

/** An ed25519 signature (64 bytes) in base64url, as signMessage writes it. */
const SIGNATURE_CHARS = 86;

/** What NATS puts on the wire for one publish (headers included: message id, signature), which max_payload limits. */
export function publishedSize(payloadBytes: number, msgId: string): number {
  const head = `NATS/1.0\r\nNats-Msg-Id: ${msgId}\r\n${SIGNATURE_HEADER}: ${'x'.repeat(SIGNATURE_CHARS)}\r\n\r\n`;
  return payloadBytes + Buffer.byteLength(head);
}

/**
 * Publishes to JetStream with a message id (duplicates within the stream's window are dropped),
 * signed with the control plane's message key (header Nebula-Signature over subject and body): a
 * worker applies only messages that verify against the key it pinned at join.
 * The API owns the APPS and GROUPS streams: they are ensured (created, or brought to the current settings) before
 * the first publish and again after any failure, so a JetStream that came back empty gets its
 * streams back.
 */
export function jetStreamPublisher(
  nc: NatsConnection,
  signingKey: KeyPair,
  timeoutMs = 2000,
  stream: StreamOptions = {},
): Publisher & { ensure(): Promise<void> } {
  const js = jetstream(nc, { timeout: timeoutMs });
  const publicKey = signingKey.getPublicKey();
  let ensured = false;
  const ensure = async () => {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    await ensureStream(jsm, 'apps', stream);
    // Device groups' messages (groups.<g>) go through the same outbox and relay.
    await ensureStream(jsm, 'groups', stream);
    ensured = true;
  };
  return {
    ensure,
    async publish(subject, payload, msgId) {
      try {
        if (!ensured) await ensure();
        const h = headers();
        h.set(SIGNATURE_HEADER, signMessage(signingKey, subject, payload));
        await js.publish(subject, payload, { msgID: msgId, timeout: timeoutMs, headers: h });
      } catch (cause) {
        ensured = false;
        const permanent = permanentPublishFailure(cause);
        throw new PublishError(permanent ?? `publish to ${subject} failed`, permanent === null, { cause });
      }
    },
    async storedSubjects() {
      const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
      const ours = new Set<string>();
      for (const [stream, filter] of [
        [streams.apps.name, subjects.allApps],
        [streams.groups.name, subjects.allGroups],
      ] as const) {
        try {
          const info = await jsm.streams.info(stream, { subjects_filter: filter });
          // Only a subject whose newest message is ours counts: a host can make the server store an
          // answer on apps.<x> (a reply subject), which no worker applies but which would hide the
          // app's latest revision from a host that joins or restarts. Such a subject counts as
          // missing, so its latest revision (or the group's newest message) is published again.
          for (const subject of Object.keys(info.state.subjects ?? {})) {
            const last = await jsm.direct.getMessage(stream, { last_by_subj: subject });
            if (last && verifyMessage(publicKey, last.subject, last.data, last.header?.get(SIGNATURE_HEADER))) ours.add(subject);
          }
        } catch (err) {
          if (!isStreamNotFound(err)) throw err;
          // Deleted: made again here (the API owns both), empty.
          await ensure();
        }
      }
      return ours;
    },
  };
}
