import type { HostKey } from './host-signature.ts';

/**
 * Whether a result, heartbeat or host event comes from the host its subject names. Permissions stop a host from
 * publishing as another, but not from making JetStream store its answer on a subject the host chose
 * (a reply subject), and they say nothing once a host is revoked: so every message must carry its
 * host's signature over subject and body, checked against the key the control plane registered for
 * that host (`host_credentials`, not revoked).
 *
 *   subject ─▶ host id ─┬─ none (not results.<app>.<host> / hosts.<host> / events.<host>.<kind>.<name>) ─▶ bad_subject
 *                       └─ key of the host ─┬─ none ─▶ unknown_host;  revoked ─▶ revoked_host
 *                                           └─ signature ─┬─ missing ─▶ unsigned
 *                                                         ├─ wrong ─▶ bad_signature
 *                                                         └─ valid ─▶ accepted (then decoded)
 */
/**
 * After decoding, too: `invalid` (malformed, or naming another host than its subject) and
 * `newer_version` (of a newer schema version than this notifier's). Host events only, when written:
 * `unknown_cron_job` (a run of a job no incarnation of which has that cron_job_id) and
 * `unknown_rollout` (a group result for no rollout of that group).
 */
export type Rejection =
  | 'bad_subject'
  | 'unknown_host'
  | 'revoked_host'
  | 'unsigned'
  | 'bad_signature'
  | 'invalid'
  | 'newer_version'
  | 'unknown_cron_job'
  | 'unknown_rollout';
export const REJECTIONS: readonly Rejection[] = [
  'bad_subject',
  'unknown_host',
  'revoked_host',
  'unsigned',
  'bad_signature',
  'invalid',
  'newer_version',
  'unknown_cron_job',
  'unknown_rollout',
];

/** What the control plane says about a host's key. */
export type HostKeyState = { state: 'active'; key: HostKey } | { state: 'revoked' } | { state: 'unknown' };

export type StreamKind = 'results' | 'heartbeats' | 'events';

/** What a host reports on `events.<host>.<kind>.<name>` (see groupSubjects in @nebula/contracts). */
export const HOST_EVENT_KINDS = ['group', 'cron', 'prune'] as const;
export type HostEventKind = (typeof HOST_EVENT_KINDS)[number];

export function isHostEventKind(s: string | undefined): s is HostEventKind {
  return (HOST_EVENT_KINDS as readonly (string | undefined)[]).includes(s);
}

/**
 * The host a subject names: `results.<app>.<host>`, `hosts.<host>`, `events.<host>.<kind>.<name>`
 * (kind group, cron or prune); null for any other shape.
 */
export function hostOfSubject(kind: StreamKind, subject: string): string | null {
  const parts = subject.split('.');
  if (kind === 'events') {
    const [root, host, k, name] = parts;
    return parts.length === 4 && root === 'events' && host && isHostEventKind(k) && name ? host : null;
  }
  const ok = kind === 'results' ? parts.length === 3 && parts[0] === 'results' && parts[1] !== '' : parts.length === 2 && parts[0] === 'hosts';
  const host = parts.at(-1);
  return ok && host ? host : null;
}

export interface SignedMessage {
  subject: string;
  data: Uint8Array;
  /** The Nebula-Signature header (undefined when absent). */
  signature: string | undefined;
}

export type Verdict = { ok: true; host: string } | { ok: false; reason: Rejection; host: string | null };

/** Pure: the key state is looked up by the caller (for `hostOfSubject`), `verify` checks one signature. */
export function judgeMessage(
  kind: StreamKind,
  m: SignedMessage,
  keyOf: (host: string) => HostKeyState,
  verify: (key: HostKey, subject: string, data: Uint8Array, signature: string) => boolean,
): Verdict {
  const host = hostOfSubject(kind, m.subject);
  if (host === null) return { ok: false, reason: 'bad_subject', host };
  const k = keyOf(host);
  if (k.state === 'unknown') return { ok: false, reason: 'unknown_host', host };
  if (k.state === 'revoked') return { ok: false, reason: 'revoked_host', host };
  if (!m.signature) return { ok: false, reason: 'unsigned', host };
  return verify(k.key, m.subject, m.data, m.signature) ? { ok: true, host } : { ok: false, reason: 'bad_signature', host };
}
