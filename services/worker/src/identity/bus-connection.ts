import { type ConnectionOptions, jwtAuthenticator } from '@nats-io/transport-node';
import { hostInboxPrefix, InsecureBusError, plaintextRemoteServers } from '@nebula/bus-auth';
import type { HostIdentity } from './host-identity.ts';

/**
 * The host's NATS connection options: its JWT and key (read again at each reconnect, so a renewed JWT
 * is used), replies only under its own inbox prefix, and TLS outside loopback (the rule of
 * busConnectOptions; the JWT here is renewed in memory, not a creds file).
 */
export function hostConnectOptions(
  identity: Pick<HostIdentity, 'hostId' | 'jwt' | 'seed'>,
  cfg: { servers: string[]; tlsCaFile?: string | undefined },
): ConnectionOptions {
  const plain = plaintextRemoteServers(cfg.servers, cfg.tlsCaFile !== undefined);
  if (plain.length > 0) {
    throw new InsecureBusError(`NATS_URL ${plain.join(', ')} is outside loopback without TLS: use tls:// (and NATS_TLS_CA for a private CA)`);
  }
  const needsTls = cfg.tlsCaFile !== undefined || cfg.servers.some((s) => s.startsWith('tls://'));
  return {
    servers: cfg.servers,
    name: `nebula-worker-${identity.hostId}`,
    authenticator: jwtAuthenticator(
      () => identity.jwt(),
      () => identity.seed(),
    ),
    inboxPrefix: hostInboxPrefix(identity.hostId),
    ...(needsTls ? { tls: cfg.tlsCaFile ? { caFile: cfg.tlsCaFile } : {} } : {}),
  };
}
