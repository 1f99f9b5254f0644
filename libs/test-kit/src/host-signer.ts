import { type MessageSigner, messageSigner } from '@nebula/bus-auth';

/** Signs as a host signs its results and heartbeats (bus-auth's `messageSigner`, the key decoded once). */
export type HostSigner = MessageSigner;

export function hostSigner(seed: string): HostSigner {
  return messageSigner(seed);
}
