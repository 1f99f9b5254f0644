import type { JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import { SIGNATURE_HEADER, verifyMessage } from '@nebula/bus-auth';
import { type AppMessage, appMessageSchema, type GroupMessage, groupMessageSchema, groupSubjects, streams, subjects } from '@nebula/contracts';
import { decode, NewerVersionError } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import type { z } from 'zod';
import { NewerMessageVersionError } from './errors.ts';

/**
 * Only the control plane's messages are applied (app revisions on APPS, device group messages on
 * GROUPS): each must carry its signature (header Nebula-Signature, over subject and body) by the key
 * this host pinned at join. Permissions alone do not keep other messages out of a stream: a host can
 * make the server store its answer (a PubAck) on `apps.x` by naming that reply subject. A message
 * that does not verify is logged (never its body: it may hold anything) and counted, once per stream
 * sequence (the newest message is read often).
 *
 * A signed message of a newer schema version (MESSAGE_VERSION) than this worker's is counted too
 * (reason "newer_version"), and decode says so rather than "invalid": the control plane was upgraded
 * before this worker, as it should be, and this worker is the one to upgrade.
 */
export interface MessageGate<T> {
  accept(m: { subject: string; data: Uint8Array; headers?: MsgHdrs | undefined; seq: number; via: 'consumer' | 'direct get' }): boolean;
  /**
   * Parses an accepted message. One of a newer schema version than this worker's throws
   * NewerMessageVersionError (counted once per stream sequence, reason "newer_version"); any other
   * that does not parse, InvalidMessageError.
   */
  decode(m: { subject: string; data: Uint8Array; seq: number }): T;
}

export type AppMessageGate = MessageGate<AppMessage>;
export type GroupMessageGate = MessageGate<GroupMessage>;

export type RejectReason = 'signature' | 'newer_version';

const REMEMBERED = 1_000;

interface GateArgs {
  controlPlaneKey: string;
  log: Logger;
  onRejected: (reason: RejectReason) => void;
}

export function createMessageGate<S extends z.ZodType>(args: GateArgs & { schema: S; what: string }): MessageGate<z.output<S>> {
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
        return decode(args.schema, m.data, m.subject);
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
          `${args.what} without a valid control plane signature: not applied`,
        );
      }
      return false;
    },
  };
}

export function createAppMessageGate(args: GateArgs): AppMessageGate {
  return createMessageGate({ ...args, schema: appMessageSchema, what: 'app message' });
}

export function createGroupMessageGate(args: GateArgs): GroupMessageGate {
  return createMessageGate({ ...args, schema: groupMessageSchema, what: 'device group message' });
}

/** The newest message on `subject` of `stream` by direct get (a host has no right to STREAM.MSG.GET), when it passes the gate. */
async function readNewest<T>(jsm: JetStreamManager, stream: string, subject: string, gate: MessageGate<T>): Promise<T | null> {
  const last = await jsm.direct.getMessage(stream, { last_by_subj: subject });
  if (last === null) return null;
  if (!gate.accept({ subject: last.subject, data: last.data, headers: last.header, seq: last.seq, via: 'direct get' })) return null;
  return gate.decode({ subject: last.subject, data: last.data, seq: last.seq });
}

/**
 * The newest revision of an app in APPS. Null when there is none, or when the newest one is not the
 * control plane's. Throws NewerMessageVersionError when it is of a newer schema version,
 * InvalidMessageError when malformed.
 */
export async function readNewestRevision(jsm: JetStreamManager, app: string, gate: AppMessageGate): Promise<AppMessage | null> {
  return readNewest(jsm, streams.apps.name, subjects.app(app), gate);
}

/** The newest message of a device group in GROUPS (null: the group was never created, or the newest is not signed); throws as readNewestRevision. */
export async function readNewestGroupMessage(jsm: JetStreamManager, group: string, gate: GroupMessageGate): Promise<GroupMessage | null> {
  return readNewest(jsm, streams.groups.name, groupSubjects.group(group), gate);
}
