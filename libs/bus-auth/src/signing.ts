import { fromPublic, type KeyPair } from '@nats-io/nkeys';

/**
 * Signed messages. Permissions decide who may publish on a subject, but JetStream answers on any
 * reply subject a requester names, so a host can make the server place a message on a subject it may
 * not publish to (a pull or a publish with `reply: apps.x`). Every app message therefore carries the
 * control plane's signature, every result and heartbeat its host's, over the subject and the body:
 * a message moved to another subject, or made by the server, does not verify.
 */
export const SIGNATURE_HEADER = 'Nebula-Signature';

const enc = new TextEncoder();

function signed(subject: string, data: Uint8Array): Uint8Array {
  const head = enc.encode(`${subject}\n`);
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

export function signMessage(key: KeyPair, subject: string, data: Uint8Array): string {
  return Buffer.from(key.sign(signed(subject, data))).toString('base64url');
}

/** False for a missing, malformed or wrong signature; never throws. */
export function verifyMessage(publicKey: string, subject: string, data: Uint8Array, signature: string | undefined | null): boolean {
  if (!signature) return false;
  try {
    return fromPublic(publicKey).verify(signed(subject, data), Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}
