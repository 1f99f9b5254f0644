import { type ConnectionOptions, connect, type NatsConnection } from '@nats-io/transport-node';
import { busReconnectOptions } from '@nebula/bus-auth';
import type { WorkerDeps } from '../worker.ts';
import { hostConnectOptions } from './bus-connection.ts';
import { establishIdentity, type HostIdentity, type HostIdentityConfig } from './host-identity.ts';

/** What the worker core takes from a host's place on the bus. */
export type HostBus = Pick<WorkerDeps, 'nc' | 'controlPlaneKey' | 'hostKey' | 'provision'>;

/**
 * A host on the bus, as the worker's main makes it: its identity (joined with a token, or read from
 * its credentials file and renewed), a connection with its own credential that always presents the
 * newest JWT, and a `provision` that asks the control plane for the consumers and rights of the
 * worker's current app set (a renewal).
 */
export async function joinBus(
  cfg: HostIdentityConfig & { servers: string[]; tlsCaFile?: string | undefined; connect?: Partial<ConnectionOptions> },
): Promise<{ identity: HostIdentity; nc: NatsConnection; host: HostBus; close(): Promise<void> }> {
  const identity = await establishIdentity(cfg);
  const nc = await connect({ ...hostConnectOptions(identity, { servers: cfg.servers, tlsCaFile: cfg.tlsCaFile }), ...busReconnectOptions(), ...cfg.connect });
  identity.startRenewing();
  return {
    identity,
    nc,
    host: { nc, controlPlaneKey: identity.controlPlaneKey, hostKey: identity.hostKey, provision: (apps) => identity.renew(apps) },
    async close() {
      identity.stop();
      await nc.close().catch(() => undefined);
    },
  };
}
