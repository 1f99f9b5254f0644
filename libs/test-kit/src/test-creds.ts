import { createUser } from '@nats-io/nkeys';
import { apiPermissions, type ControlPlaneKeys, hostPermissions, issueUserCreds, notifierPermissions } from '@nebula/bus-auth';
import type { HostCreds } from './nats-server.ts';

/** Creds file texts of the services and of an admin user (every right in the NEBULA account), as a test server hands them out. */
export async function serviceCreds(keys: ControlPlaneKeys): Promise<{ api: string; notifier: string; admin: string }> {
  return {
    api: (await issueUserCreds(keys, { name: 'api', permissions: apiPermissions() })).creds,
    notifier: (await issueUserCreds(keys, { name: 'notifier', permissions: notifierPermissions() })).creds,
    admin: (await issueUserCreds(keys, { name: 'admin', permissions: { pub: { allow: ['>'] }, sub: { allow: ['>'] } } })).creds,
  };
}

/** A host's credential as the control plane issues it at join: its own key, its own rights. */
export async function issueHostCreds(keys: ControlPlaneKeys, hostId: string, apps: readonly string[], o: { expiresAt?: Date } = {}): Promise<HostCreds> {
  const key = createUser();
  const issued = await issueUserCreds(keys, {
    name: hostId,
    permissions: hostPermissions(hostId, apps),
    key,
    ...(o.expiresAt ? { expiresAt: o.expiresAt } : {}),
  });
  return { hostId, creds: issued.creds, publicKey: issued.publicKey, seed: new TextDecoder().decode(key.getSeed()) };
}
