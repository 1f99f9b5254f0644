import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { fromPublic } from '@nats-io/nkeys';

/**
 * The check of a host's signature, as `verifyMessage` of @nebula/bus-auth defines it (ed25519 over
 * `<subject>\n<body>`, base64url), done by Node's crypto: the pure-JS ed25519 behind nkeys takes
 * about 10 ms per verification on our machines, which at thousands of heartbeats a second would be
 * the notifier's whole budget; OpenSSL's takes tens of microseconds. A host's key is decoded once and
 * kept (see host-keys.ts). `host-signature.test.ts` checks both agree.
 */
export type HostKey = KeyObject;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
// DER of an ed25519 SubjectPublicKeyInfo, before the 32 bytes of the key.
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function base32Decode(s: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of s) {
    const i = BASE32.indexOf(c);
    if (i < 0) throw new TypeError('not base32');
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** A host's `U...` public key, ready to verify with; throws on anything that is not a user nkey. */
export function hostKey(publicKey: string): HostKey {
  // fromPublic checks the prefix and the checksum; the raw key sits between prefix byte and CRC.
  if (!publicKey.startsWith('U')) throw new TypeError('not a user public key');
  fromPublic(publicKey);
  const raw = base32Decode(publicKey).subarray(1, 33);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
}

const enc = new TextEncoder();

/** False for a missing, malformed or wrong signature; never throws. */
export function verifyHostSignature(key: HostKey, subject: string, data: Uint8Array, signature: string | undefined | null): boolean {
  if (!signature) return false;
  try {
    const sig = Buffer.from(signature, 'base64url');
    if (sig.length !== 64) return false;
    return verify(null, Buffer.concat([enc.encode(`${subject}\n`), data]), key, sig);
  } catch {
    return false;
  }
}
