import type { JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import { SIGNATURE_HEADER, verifyMessage } from '@nebula/bus-auth';
import { type AppMessage, appMessageSchema, streams, subjects } from '@nebula/contracts';
import { decode, NewerVersionError } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import { NewerMessageVersionError } from './errors.ts';

/**
 * Only the control plane's app messages are applied: each must carry its signature (header
 * Nebula-Signature, over subject and body) by the key this host pinned at join. Permissions alone do
 * not keep other messages out of APPS: a host can make the server store its answer (a PubAck) on
 * `apps.x` by naming that reply subject. A message that does not verify is logged (never its body:
 * it may hold anything) and counted, once per stream sequence (the newest revision is read often).
 *
 * A signed message of a newer schema version (MESSAGE_VERSION) than this worker's is counted too
 * (reason "newer_version"), and decode says so rather than "invalid": the control plane was upgraded
 * before this worker, as it should be, and this worker is the one to upgrade.
 */
export interface AppMessageGate {
  accept(m: { subject: string; data: Uint8Array; headers?: MsgHdrs | undefined; seq: number; via: 'consumer' | 'direct get' }): boolean;
  /**
   * Parses an accepted message. One of a newer schema version than this worker's throws
   * NewerMessageVersionError (counted once per stream sequence, reason "newer_version"); any other
   * that does not parse, InvalidMessageError.
   */
  decode(m: { subject: string; data: Uint8Array; seq: number }): AppMessage;
}

export type RejectReason = 'signature' | 'newer_version';

const REMEMBERED = 1_000;

export function createAppMessageGate(args: { controlPlaneKey: string; log: Logger; onRejected: (reason: RejectReason) => void }): AppMessageGate {
  const seen = new Set<number>();
  const seenNewer = new Set<number>();
  /** True the first time a sequence is seen (of the last REMEMBERED). */
  const firstTime = (set: Set<number>, seq: number) => {
    if (set.has(seq)) return false;
    set.add(seq);
    if (set.size > REMEMBERED) set.delete(set.values().next().value as number);
    return true;
  };
  return {
    decode(m) {
      try {
        return decode(appMessageSchema, m.data, m.subject);
      } catch (err) {
        if (!(err instanceof NewerVersionError)) throw err;
        if (firstTime(seenNewer, m.seq)) args.onRejected('newer_version');
        throw new NewerMessageVersionError(err.version, err.understood, { cause: err });
      }
    },
    accept(m) {
      if (verifyMessage(args.controlPlaneKey, m.subject, m.data, m.headers?.get(SIGNATURE_HEADER))) return true;
      if (firstTime(seen, m.seq)) {
        args.onRejected('signature');
        args.log.warn(
          { subject: m.subject, seq: m.seq, bytes: m.data.length, signed: (m.headers?.get(SIGNATURE_HEADER) ?? '') !== '', via: m.via },
          'app message without a valid control plane signature: not applied',
        );
      }
      return false;
    },
  };
}

/**
 * The newest revision of an app in APPS, by direct get (a host has no right to STREAM.MSG.GET).
 * Null when there is none, or when the newest one is not the control plane's. Throws
 * NewerMessageVersionError when it is of a newer schema version, InvalidMessageError when malformed.
 */
export async function readNewestRevision(jsm: JetStreamManager, app: string, gate: AppMessageGate): Promise<AppMessage | null> {
  const last = await jsm.direct.getMessage(streams.apps.name, { last_by_subj: subjects.app(app) });
  if (last === null) return null;
  if (!gate.accept({ subject: last.subject, data: last.data, headers: last.header, seq: last.seq, via: 'direct get' })) return null;
  return gate.decode({ subject: last.subject, data: last.data, seq: last.seq });
}
