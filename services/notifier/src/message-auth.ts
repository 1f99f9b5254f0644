import { SIGNATURE_HEADER } from '@nebula/bus-auth';
import { type HostKeyState, hostOfSubject, judgeMessage, type StreamKind, type Verdict } from './authenticate.ts';
import type { HostKeyCache } from './host-keys.ts';
import { verifyHostSignature } from './host-signature.ts';

export interface IncomingMessage {
  subject: string;
  data: Uint8Array;
  headers?: { get(name: string): string } | undefined;
}

/**
 * `judgeMessage` with the keys of the cache: synchronous for a host whose key is in memory (the hot
 * path); a host not in memory, or a signature that fails with the key in memory (the host may have
 * joined again with a new key), waits for one read of that host's row, at most once per refresh.
 * Rejects only when that read fails (PostgreSQL away): the message is then retried, not dropped.
 */
export function authenticator(kind: StreamKind, keys: HostKeyCache): (m: IncomingMessage) => Verdict | Promise<Verdict> {
  return (m) => {
    const signed = { subject: m.subject, data: m.data, signature: m.headers?.get(SIGNATURE_HEADER) || undefined };
    const judge = (k: HostKeyState) => judgeMessage(kind, signed, () => k, verifyHostSignature);
    const host = hostOfSubject(kind, m.subject);
    if (host === null) return judge({ state: 'unknown' }); // bad_subject
    const known = keys.peek(host);
    if (known === undefined) return keys.lookup(host).then(judge);
    const v = judge(known);
    if (!v.ok && v.reason === 'bad_signature' && keys.mayLookup(host)) return keys.lookup(host).then(judge);
    return v;
  };
}
