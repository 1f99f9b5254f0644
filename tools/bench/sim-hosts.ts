/**
 * Simulated hosts with identities of their own. Each has its own user nkey (made here, its seed
 * never leaves the process, as on a real host), signs every result and heartbeat it publishes with
 * it, and is known to the control plane by its public key:
 *
 *   joinSimHost(client, token, host, apps)  POST /api/v2/hosts/join, as a worker joins: the API
 *                                           writes host_credentials, makes its consumers, returns
 *                                           its NATS JWT and the control plane's key
 *   registerSimHosts(databaseUrl, hosts)    the host_credentials rows the API would write, for the
 *                                           parts that run without the API (the notifier part)
 *
 * Signing uses Node's crypto (`hostSigner` of @nebula/test-kit: the same signatures
 * as bus-auth's `signMessage`, a hundred times faster than the pure-JS ed25519 of nkeys), so one
 * process can play thousands of hosts. Simulated hosts that publish through a shared connection
 * (the notifier part) still sign each message with their own key: the notifier checks them for real.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { fmtCreds } from '@nats-io/jwt';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { headers } from '@nats-io/transport-node';
import { SIGNATURE_HEADER } from '@nebula/bus-auth';
import { type HostCredential, hostCredentialSchema } from '@nebula/contracts';
import { createDb } from '@nebula/db';
import { type HostSigner, hostSigner } from '@nebula/test-kit';
import type { ApiClient } from './services.ts';

export interface SimHost {
  hostId: string;
  publicKey: string;
  seed: string;
  /** The host's key as a KeyPair , for code that signs with one (the worker). */
  key: KeyPair;
  sign: HostSigner;
}

export function makeSimHost(hostId: string): SimHost {
  const kp = createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  return { hostId, publicKey: kp.getPublicKey(), seed, key: kp, sign: hostSigner(seed) };
}

/** Joins through the API with a join token, as a worker does (only the public key travels). */
export async function joinSimHost(client: ApiClient, token: string, host: SimHost, apps: string[]): Promise<HostCredential> {
  const res = await client.call('POST', '/api/v2/hosts/join', { token, host_id: host.hostId, public_key: host.publicKey, apps });
  if (res.status !== 200 && res.status !== 201) throw new Error(`join ${host.hostId}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return hostCredentialSchema.parse(res.body);
}

/** The creds file text of a joined host: its JWT and its own key. */
export function simHostCreds(host: SimHost, credential: HostCredential): string {
  return new TextDecoder().decode(fmtCreds(credential.jwt, host.key));
}

/** Writes the rows the API writes at join (for `apps`, expiring in a day), 1,000 per statement. */
export async function registerSimHosts(databaseUrl: string, hosts: readonly SimHost[], apps: string[]): Promise<void> {
  const db = createDb(databaseUrl, 1);
  try {
    for (let i = 0; i < hosts.length; i += 1000) {
      await db
        .insertInto('host_credentials')
        .values(hosts.slice(i, i + 1000).map((h) => ({ host_id: h.hostId, public_key: h.publicKey, apps, expires_at: new Date(Date.now() + 86_400_000) })))
        .execute();
    }
  } finally {
    await db.destroy();
  }
}

/** Publishes `body` on `subject` as `host` would: signed with its key (`signer`: another's, for a forgery). */
export async function publishAsHost(js: JetStreamClient, subject: string, body: unknown, signer: SimHost | null): Promise<void> {
  const data = new TextEncoder().encode(JSON.stringify(body));
  const h = headers();
  if (signer) h.set(SIGNATURE_HEADER, signer.sign(subject, data));
  await js.publish(subject, data, { headers: h });
}
