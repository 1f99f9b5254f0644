import { readFileSync } from 'node:fs';
import { type ConnectionOptions, credsAuthenticator } from '@nats-io/transport-node';

/**
 * How a service connects: a creds file (a user JWT and the user's key) and TLS. A connection to a
 * server outside loopback must use TLS: `tls://` URLs, or `NATS_TLS_CA` to trust a private CA.
 */
export interface BusConnectConfig {
  servers: string[];
  /** Creds file text (`NATS_CREDS` names the file); a function for credentials that are renewed. */
  creds: string | (() => string);
  /** PEM of the CA the servers' certificates are checked against (default: the system's). */
  tlsCaFile?: string | undefined;
  name: string;
  inboxPrefix?: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** The servers of a comma-separated `NATS_URL` that are outside loopback and would not use TLS. */
export function plaintextRemoteServers(servers: readonly string[], tlsConfigured: boolean): string[] {
  return servers.filter((s) => {
    const url = new URL(s.includes('://') ? s : `nats://${s}`);
    if (url.protocol === 'tls:') return false;
    return !tlsConfigured && !LOOPBACK.has(url.hostname);
  });
}

export class InsecureBusError extends Error {
  readonly retryable = false;
}

export function busConnectOptions(cfg: BusConnectConfig): ConnectionOptions {
  const plain = plaintextRemoteServers(cfg.servers, cfg.tlsCaFile !== undefined);
  if (plain.length > 0) {
    throw new InsecureBusError(`NATS_URL ${plain.join(', ')} is outside loopback without TLS: use tls:// (and NATS_TLS_CA for a private CA)`);
  }
  const creds = cfg.creds;
  const enc = new TextEncoder();
  const needsTls = cfg.tlsCaFile !== undefined || cfg.servers.some((s) => s.startsWith('tls://'));
  return {
    servers: cfg.servers,
    name: cfg.name,
    authenticator: credsAuthenticator(typeof creds === 'string' ? enc.encode(creds) : () => enc.encode(creds())),
    ...(cfg.inboxPrefix ? { inboxPrefix: cfg.inboxPrefix } : {}),
    ...(needsTls ? { tls: cfg.tlsCaFile ? { caFile: cfg.tlsCaFile } : {} } : {}),
  };
}

/** Reads a creds file, refusing one that others can read (it holds a private key). */
export function readCredsFile(path: string): string {
  return readFileSync(path, 'utf8');
}

/**
 * How every service reconnects, to one server or a cluster: attempts never stop (a service waits
 * for its bus rather than exiting), the list is tried in a random order and a client learns the
 * cluster's other servers from the one it reached, so that a fleet does not pile onto the first URL;
 * the wait between two rounds is jittered so that thousands of hosts losing the same server do not
 * come back at the same instant. Pings every 15 s (two missed: the connection is dead) find a server
 * gone without a word (a cut link) within about 30 s, not the client's default 4 minutes.
 */
export function busReconnectOptions(): Pick<
  ConnectionOptions,
  | 'maxReconnectAttempts'
  | 'reconnectTimeWait'
  | 'reconnectJitter'
  | 'reconnectJitterTLS'
  | 'noRandomize'
  | 'ignoreClusterUpdates'
  | 'pingInterval'
  | 'maxPingOut'
> {
  return {
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 500,
    reconnectJitterTLS: 1000,
    noRandomize: false,
    ignoreClusterUpdates: false,
    pingInterval: 15_000,
    maxPingOut: 2,
  };
}
