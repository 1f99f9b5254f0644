/**
 * The nats.conf of one server of a NATS cluster, from the bus's nats.conf (operator, system
 * account, resolver: the same keys on every server):
 *
 *   server i of N ── routes ──▶ every server of the cluster, itself included (cluster block)
 *                ── its own server_name, client and monitor ports, JetStream store and resolver folder
 *
 * Why itself too: a fresh server takes the number of routes it is given as the size of the
 * JetStream meta group to bootstrap (nats-server bootstrapRaftNode: max(2, routes)). With only the
 * N-1 others, three servers form a meta group of two and the third stays outside it, so a stream
 * with three copies is refused ("no suitable peers for placement") until it is added, which can
 * take minutes. A route to itself is recognised and dropped by the server.
 *
 * Each server keeps the accounts in a folder of its own (an account pushed to one is sent to the
 * others over the system account) and its JetStream data in another. Routes on loopback only unless
 * they are given TLS: a route is a server's full trust, and nothing else guards it.
 */
export interface ClusterNode {
  /** `server_name`: unique in the cluster; JetStream names stream leaders by it. */
  name: string;
  /** The address the client, route and monitor ports listen on. */
  host: string;
  clientPort: number;
  clusterPort: number;
  /** The HTTP monitor (`/healthz`, `/jsz`); none when unset. */
  monitorPort?: number | undefined;
  storeDir: string;
  resolverDir: string;
}

export interface ClusterConfigOptions {
  /** The bus's nats.conf text (createBusSetup().serverConfig, or the bus directory's file). */
  busConfig: string;
  nodes: readonly ClusterNode[];
  /** The server to render, 0-based. */
  index: number;
  /** The cluster's name (default `nebula`). */
  clusterName?: string;
  /** TLS of the routes (files as the server sees them); required when a node listens outside loopback. */
  routeTls?: { certFile: string; keyFile: string; caFile: string } | undefined;
}

export class ClusterConfigError extends Error {
  override name = 'ClusterConfigError';
  readonly retryable = false;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const RESOLVER_DIR = /^(resolver: \{[^\n]*\bdir: )("(?:[^"\\]|\\.)*")/m;
const q = (s: string) => JSON.stringify(s);

export function clusterServerConfig(opts: ClusterConfigOptions): string {
  const { nodes, index } = opts;
  const self = nodes[index];
  if (!self) throw new ClusterConfigError(`server ${index} of ${nodes.length}: no such server`);
  if (new Set(nodes.map((n) => n.name)).size !== nodes.length) throw new ClusterConfigError('two servers of the cluster have the same name');
  const remote = nodes.filter((n) => !LOOPBACK.has(n.host));
  if (remote.length > 0 && !opts.routeTls) {
    throw new ClusterConfigError(`routes of ${remote.map((n) => n.name).join(', ')} would leave loopback without TLS: give routeTls`);
  }
  if (!RESOLVER_DIR.test(opts.busConfig)) throw new ClusterConfigError('the bus configuration names no resolver folder');
  const bus = opts.busConfig.replace(RESOLVER_DIR, (_, head: string) => `${head}${q(self.resolverDir)}`);
  const host = (n: ClusterNode) => (n.host.includes(':') ? `[${n.host}]` : n.host);
  const scheme = opts.routeTls ? 'tls' : 'nats-route';
  const routes = nodes.map((n) => q(`${scheme}://${host(n)}:${n.clusterPort}`));
  const lines = [
    bus.trimEnd(),
    '',
    `server_name: ${q(self.name)}`,
    `listen: ${q(`${host(self)}:${self.clientPort}`)}`,
    ...(self.monitorPort !== undefined ? [`http: ${q(`${host(self)}:${self.monitorPort}`)}`] : []),
    `jetstream: { store_dir: ${q(self.storeDir)} }`,
    'cluster: {',
    `  name: ${q(opts.clusterName ?? 'nebula')}`,
    `  listen: ${q(`${host(self)}:${self.clusterPort}`)}`,
    `  routes: [${routes.join(', ')}]`,
    ...(opts.routeTls
      ? [`  tls: { cert_file: ${q(opts.routeTls.certFile)}, key_file: ${q(opts.routeTls.keyFile)}, ca_file: ${q(opts.routeTls.caFile)}, verify: true }`]
      : []),
    '}',
    '',
  ];
  return lines.join('\n');
}

/**
 * N servers on one machine (the local stack, tests): `host`, client ports from `clientPort`, routes
 * from `clusterPort`, monitors from `monitorPort`, each server's data under `dir/<name>`.
 */
export function localClusterNodes(
  n: number,
  base: { dir: string; host?: string; clientPort: number; clusterPort: number; monitorPort?: number },
): ClusterNode[] {
  if (!Number.isInteger(n) || n < 1) throw new ClusterConfigError(`a cluster of ${n} servers`);
  return Array.from({ length: n }, (_, i) => {
    const name = `n${i + 1}`;
    return {
      name,
      host: base.host ?? '127.0.0.1',
      clientPort: base.clientPort + i,
      clusterPort: base.clusterPort + i,
      monitorPort: base.monitorPort === undefined ? undefined : base.monitorPort + i,
      storeDir: `${base.dir}/${name}/jetstream`,
      resolverDir: `${base.dir}/${name}/accounts`,
    };
  });
}
