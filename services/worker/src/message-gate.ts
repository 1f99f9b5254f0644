import type { JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import { SIGNATURE_HEADER, verifyMessage } from '@nebula/bus-auth';
import { type AppMessage, appMessageSchema, streams, subjects } from '@nebula/contracts';
import { decode } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';

/**
 * Only the control plane's app messages are applied: each must carry its signature (header
 * Nebula-Signature, over subject and body) by the key this host pinned at join. Permissions alone do
 * not keep other messages out of APPS: a host can make the server store its answer (a PubAck) on
 * `apps.x` by naming that reply subject. A message that does not verify is logged (never its body:
 * it may hold anything) and counted, once per stream sequence (the newest revision is read often).
 */
export interface AppMessageGate {
  accept(m: { subject: string; data: Uint8Array; headers?: MsgHdrs | undefined; seq: number; via: 'consumer' | 'direct get' }): boolean;
}

export type RejectReason = 'signature';

const REMEMBERED = 1_000;

export function createAppMessageGate(args: { controlPlaneKey: string; log: Logger; onRejected: (reason: RejectReason) => void }): AppMessageGate {
  const seen = new Set<number>();
  return {
    accept(m) {
      if (verifyMessage(args.controlPlaneKey, m.subject, m.data, m.headers?.get(SIGNATURE_HEADER))) return true;
      if (!seen.has(m.seq)) {
        seen.add(m.seq);
        if (seen.size > REMEMBERED) seen.delete(seen.values().next().value as number);
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
 * Null when there is none, or when the newest one is not the control plane's.
 */
export async function readNewestRevision(jsm: JetStreamManager, app: string, gate: AppMessageGate): Promise<AppMessage | null> {
  const last = await jsm.direct.getMessage(streams.apps.name, { last_by_subj: subjects.app(app) });
  if (last === null) return null;
  if (!gate.accept({ subject: last.subject, data: last.data, headers: last.header, seq: last.seq, via: 'direct get' })) return null;
  return decode(appMessageSchema, last.data, last.subject);
}
