import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { fromPublic, type KeyPair } from '@nats-io/nkeys';

/**
 * Signed messages. Permissions decide who may publish on a subject, but JetStream answers on any
 * reply subject a requester names, so a host can make the server place a message on a subject it may
 * not publish to (a pull or a publish with `reply: apps.x`). Every app message therefore carries the
 * control plane's signature, every result and heartbeat its host's, over the subject and the body:
 * a message moved to another subject, or made by the server, does not verify.
 *
 * The keys are nkeys (ed25519); the signing itself is Node's (OpenSSL): the pure-JS ed25519 behind
 * nkeys takes about 10 ms per signature or check here, OpenSSL's tens of microseconds, which is what
 * lets a notifier check thousands of heartbeats a second. ed25519 is deterministic: the signatures
 * are the same as nkeys' (`test/signing.test.ts`).
 */
export const SIGNATURE_HEADER = 'Nebula-Signature';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
// DER prefixes of an ed25519 key, before its 32 raw bytes.
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

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

/** A public nkey (`U...`, `N...`, any type) as a key to verify with; throws when it is not one. */
export function publicKeyObject(publicKey: string): KeyObject {
  fromPublic(publicKey); // checks the prefix and the checksum
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, base32Decode(publicKey).subarray(1, 33)]), format: 'der', type: 'spki' });
}

/** The private key of an nkey seed (`S` + type: two prefix bytes, 32 bytes of seed, a checksum). */
export function seedKeyObject(seed: string | Uint8Array): KeyObject {
  const text = typeof seed === 'string' ? seed : new TextDecoder().decode(seed);
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, base32Decode(text).subarray(2, 34)]), format: 'der', type: 'pkcs8' });
}

const enc = new TextEncoder();
const signedBytes = (subject: string, data: Uint8Array) => Buffer.concat([enc.encode(`${subject}\n`), data]);

/** A signer for one key, decoded once: `(subject, body) => signature`. */
export type MessageSigner = (subject: string, data: Uint8Array) => string;

export function messageSigner(seed: string | Uint8Array): MessageSigner {
  const key = seedKeyObject(seed);
  return (subject, data) => sign(null, signedBytes(subject, data), key).toString('base64url');
}

/** False for a missing, malformed or wrong signature; never throws. */
export function verifyWithKey(key: KeyObject, subject: string, data: Uint8Array, signature: string | undefined | null): boolean {
  if (!signature) return false;
  try {
    const sig = Buffer.from(signature, 'base64url');
    return sig.length === 64 && verify(null, signedBytes(subject, data), key, sig);
  } catch {
    return false;
  }
}

// Private keys decoded once per key pair: the decoding was two thirds of a signature's cost here (170 µs with it, 55 without).
const privateKeys = new WeakMap<KeyPair, KeyObject>();

export function signMessage(key: KeyPair, subject: string, data: Uint8Array): string {
  let k = privateKeys.get(key);
  if (k === undefined) {
    k = seedKeyObject(key.getSeed());
    privateKeys.set(key, k);
  }
  return sign(null, signedBytes(subject, data), k).toString('base64url');
}

// Public keys decoded once: a worker checks every message against one key, a notifier against its hosts'.
const decoded = new Map<string, KeyObject | null>();

/** False for a missing, malformed or wrong signature, or a key that is not one; never throws. */
export function verifyMessage(publicKey: string, subject: string, data: Uint8Array, signature: string | undefined | null): boolean {
  let key = decoded.get(publicKey);
  if (key === undefined) {
    try {
      key = publicKeyObject(publicKey);
    } catch {
      key = null;
    }
    if (decoded.size >= 100_000) decoded.clear();
    decoded.set(publicKey, key);
  }
  return key !== null && verifyWithKey(key, subject, data, signature);
}
