import { type ConnectionOptions, jwtAuthenticator, type NatsConnection, type Status } from '@nats-io/transport-node';
import { hostInboxPrefix, InsecureBusError, plaintextRemoteServers } from '@nebula/bus-auth';
import { WorkerError } from '../errors.ts';
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

/** The connection did not come back within its deadline after a forced reconnect. */
export class ReconnectTimeoutError extends WorkerError {
  override name = 'ReconnectTimeoutError';
  readonly retryable = true;
}

/**
 * A renewed JWT's rights apply only to a new connection: drops this one and waits (up to
 * `timeoutMs`) until the client is connected again; the authenticator presents the newest JWT
 * (hostConnectOptions). Subscriptions come back by themselves; a pull in flight is lost (its loop
 * fetches again), an ack in flight too (the message is delivered again, and handled idempotently).
 */
export async function reconnectForNewRights(nc: NatsConnection, timeoutMs: number): Promise<void> {
  const status = nc.status() as AsyncIterable<Status> & { stop?: () => void };
  let timer: NodeJS.Timeout | undefined;
  const back = (async () => {
    for await (const s of status) if (s.type === 'reconnect') return;
  })();
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ReconnectTimeoutError(`the NATS connection was not back within ${timeoutMs} ms of a reconnect for new rights`)),
      timeoutMs,
    );
  });
  try {
    await nc.reconnect();
    await Promise.race([back, late]);
  } finally {
    clearTimeout(timer);
    status.stop?.();
  }
  await nc.flush();
}
