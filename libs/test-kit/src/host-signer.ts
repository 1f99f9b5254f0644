import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { fromSeed, type KeyPair } from '@nats-io/nkeys';

/**
 * Signs as a host signs its results and heartbeats (`signMessage` of @nebula/bus-auth: ed25519 over
 * `<subject>\n<body>`, base64url), with Node's crypto: the same signature (ed25519 is deterministic),
 * a hundred times faster than the pure-JS ed25519 behind nkeys, which is what lets one process play
 * thousands of signing hosts. `test/host-signer.test.ts` checks the two agree.
 */
export type HostSigner = (subject: string, data: Uint8Array) => string;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
// DER of an ed25519 PKCS#8 private key, before the 32 bytes of the seed.
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

/** The private key of an nkey seed (`SU...`: two prefix bytes, 32 bytes of seed, a checksum). */
export function seedKey(seed: string): KeyObject {
  const raw = base32Decode(seed).subarray(2, 34);
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: 'der', type: 'pkcs8' });
}

export function hostSigner(seed: string): HostSigner {
  const key = seedKey(seed);
  const enc = new TextEncoder();
  return (subject, data) => sign(null, Buffer.concat([enc.encode(`${subject}\n`), data]), key).toString('base64url');
}

/**
 * An nkeys KeyPair whose `sign` and `verify` are Node's (the same signatures): what a simulated host
 * hands to code that signs with a KeyPair (`signMessage`), so thousands of them fit in one process.
 * Everything else is the nkeys KeyPair's; the public key is worked out once.
 */
export function fastKeyPair(seed: string): KeyPair {
  const kp = fromSeed(new TextEncoder().encode(seed));
  const priv = seedKey(seed);
  const pub = createPublicKey(priv);
  let publicKey: string | null = null;
  return {
    getPublicKey: () => (publicKey ??= kp.getPublicKey()),
    getPrivateKey: () => kp.getPrivateKey(),
    getSeed: () => kp.getSeed(),
    sign: (input) => new Uint8Array(sign(null, input, priv)),
    verify: (input, sig) => verify(null, input, pub, sig),
    clear: () => kp.clear(),
    seal: (input, recipient, nonce) => kp.seal(input, recipient, nonce),
    open: (message, sender) => kp.open(message, sender),
  };
}
