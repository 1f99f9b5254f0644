import { type KeyObject, publicKeyObject, verifyWithKey } from '@nebula/bus-auth';

/**
 * The check of a host's signature (`verifyMessage` of @nebula/bus-auth: ed25519 over
 * `<subject>\n<body>`), with the host's key decoded once and kept (see host-keys.ts).
 */
export type HostKey = KeyObject;

/** A host's `U...` public key, ready to verify with; throws on anything that is not a user nkey. */
export function hostKey(publicKey: string): HostKey {
  if (!publicKey.startsWith('U')) throw new TypeError('not a user public key');
  return publicKeyObject(publicKey);
}

export const verifyHostSignature: (key: HostKey, subject: string, data: Uint8Array, signature: string | undefined | null) => boolean = verifyWithKey;
