import { HUB_DOMAIN, REGION_NAME } from '@nebula/contracts';
import { ClusterConfigError } from './cluster-config.ts';

/**
 * The NATS side of regions. A region is a leaf server (one here; a leaf cluster works the same)
 * with a JetStream domain of its own, named like the region, linked to the hub (the servers the
 * API and the notifier use, JetStream domain `hub`):
 *
 *   hub  (domain hub)   APPS, GROUPS ───────mirrored────▶ region APPS, GROUPS   (workers' consumers)
 *                       RESULTS, HOSTS, EVENTS ◀─sourced── region RESULTS, HOSTS, EVENTS (what its hosts publish)
 *        leafnodes { listen } ◀────── link (a NEBULA user, regionLinkPermissions) ────── region leaf server
 *
 * A region's hosts connect only to its servers: with the link cut they keep their consumers, their
 * apps and their results (kept in the region's streams until the hub sources them). Both servers
 * run in operator mode with the bus's keys (`busConfig`, the bus directory's nats.conf), each with a
 * resolver folder of its own; a revocation is pushed to the region's servers as to the hub's.
 *
 * The link leaves loopback only over TLS: it carries every app revision and every result, and its
 * user has nearly every right in the account.
 */
export { HUB_DOMAIN };

export interface HubLeafOptions {
  /** Where the hub takes region links (`leafnodes.listen`). */
  host: string;
  port: number;
  /** The hub's certificate for the links; required when `host` is not loopback. */
  tls?: { certFile: string; keyFile: string } | undefined;
}

export interface RegionServerOptions {
  /** The bus's nats.conf text (operator, system account, resolver, preloaded accounts). */
  busConfig: string;
  /** The region's name: its JetStream domain. */
  region: string;
  /** `server_name` (default `<region>-1`). */
  serverName?: string;
  /** Where the region's hosts connect. */
  host: string;
  clientPort: number;
  monitorPort?: number | undefined;
  storeDir: string;
  resolverDir: string;
  /** The hub's leaf listeners (`nats-leaf://` on loopback, `tls://` otherwise). */
  hubUrls: readonly string[];
  /** The link user's creds file (regionLinkPermissions) as the server sees it. */
  linkCredsFile: string;
  /** The NEBULA account's public key: the account the link binds. */
  accountPublicKey: string;
  /** The CA that signed the hub's certificate (for `tls://` hub URLs). */
  hubCaFile?: string | undefined;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const RESOLVER_DIR = /^(resolver: \{[^\n]*\bdir: )("(?:[^"\\]|\\.)*")/m;
const q = (s: string) => JSON.stringify(s);
const hostOf = (url: string) => {
  try {
    return new URL(url).hostname;
  } catch {
    throw new ClusterConfigError(`hub URL ${url} is not a URL`);
  }
};

/** The lines the hub's configuration gains for regions: its JetStream domain and the leaf listener. */
export function hubLeafConfig(opts: HubLeafOptions): string {
  if (!LOOPBACK.has(opts.host) && !opts.tls) throw new ClusterConfigError(`region links on ${opts.host} would leave loopback without TLS: give tls`);
  const tls = opts.tls ? `, tls: { cert_file: ${q(opts.tls.certFile)}, key_file: ${q(opts.tls.keyFile)} }` : '';
  return `leafnodes: { listen: ${q(`${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`)}${tls} }\n`;
}

/** The JetStream block of a hub server (the domain regions name it by). */
export function hubJetStreamConfig(storeDir: string): string {
  return `jetstream: { store_dir: ${q(storeDir)}, domain: ${q(HUB_DOMAIN)} }\n`;
}

/** The whole nats.conf of a region's leaf server. */
export function regionServerConfig(opts: RegionServerOptions): string {
  if (!REGION_NAME.test(opts.region) || opts.region === HUB_DOMAIN) {
    throw new ClusterConfigError(`region name ${q(opts.region)}: lower-case letters, digits and dashes, not "${HUB_DOMAIN}"`);
  }
  if (opts.hubUrls.length === 0) throw new ClusterConfigError(`region ${opts.region}: no hub URL`);
  for (const url of opts.hubUrls) {
    const tls = url.startsWith('tls://');
    if (!tls && !url.startsWith('nats-leaf://')) throw new ClusterConfigError(`hub URL ${url}: nats-leaf:// (loopback) or tls://`);
    if (!tls && !LOOPBACK.has(hostOf(url))) throw new ClusterConfigError(`the link to ${url} would leave loopback without TLS: use tls://`);
    if (tls && !opts.hubCaFile) throw new ClusterConfigError(`hub URL ${url} is TLS: give the CA that signed the hub's certificate`);
  }
  if (!RESOLVER_DIR.test(opts.busConfig)) throw new ClusterConfigError('the bus configuration names no resolver folder');
  const bus = opts.busConfig.replace(RESOLVER_DIR, (_, head: string) => `${head}${q(opts.resolverDir)}`);
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const tls = opts.hubCaFile ? `, tls: { ca_file: ${q(opts.hubCaFile)} }` : '';
  return [
    bus.trimEnd(),
    '',
    `server_name: ${q(opts.serverName ?? `${opts.region}-1`)}`,
    `listen: ${q(`${host}:${opts.clientPort}`)}`,
    ...(opts.monitorPort !== undefined ? [`http: ${q(`${host}:${opts.monitorPort}`)}`] : []),
    `jetstream: { store_dir: ${q(opts.storeDir)}, domain: ${q(opts.region)} }`,
    'leafnodes: {',
    '  reconnect: 1',
    `  remotes: [ { urls: [${opts.hubUrls.map(q).join(', ')}], credentials: ${q(opts.linkCredsFile)}, account: ${q(opts.accountPublicKey)}${tls} } ]`,
    '}',
    '',
  ].join('\n');
}
