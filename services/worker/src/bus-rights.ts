import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@nebula/service-kit';
import { reconnectForNewRights } from './identity/bus-connection.ts';

/**
 * This host's consumers and its rights to them, asked of the control plane (a renewal of the
 * credential in production; a host never creates a consumer itself):
 *
 *   provision()    a consumer is missing: the served apps asked for once, however many runners ask
 *   regrant(apps)  the app set changes: a renewal for it, then a new connection, since a JWT's
 *                  rights apply only from a connect on (reconnectForNewRights)
 */
export interface BusRights {
  provision(): Promise<void>;
  regrant(apps: readonly string[]): Promise<void>;
}

export function createBusRights(args: {
  nc: NatsConnection;
  /** The control plane's side (WorkerDeps.provision). */
  provision(apps: readonly string[]): Promise<void>;
  /** The apps served now. */
  served(): readonly string[];
  reconnectTimeoutMs: number;
  log: Logger;
}): BusRights {
  /** One request to the control plane at a time: several apps missing their consumer ask once. */
  let provisioning: Promise<void> | null = null;
  return {
    provision() {
      provisioning ??= args.provision(args.served()).finally(() => {
        provisioning = null;
      });
      return provisioning;
    },
    async regrant(apps) {
      await args.provision(apps);
      await reconnectForNewRights(args.nc, args.reconnectTimeoutMs);
      args.log.info({ apps }, 'reconnected with the rights of the new app set');
    },
  };
}
