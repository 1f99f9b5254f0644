import { z } from 'zod';

/**
 * How many copies of a stream its owner keeps (`NATS_STREAM_REPLICAS`):
 *
 *   a number 1..5    that many, whatever the cluster (JetStream refuses more than it has servers)
 *   auto (default)   min(3, the servers of the cluster), never fewer than the stream already has:
 *                    1 on a single server, 3 on a three-server cluster, and a stream made with three
 *                    copies keeps them while servers are down (lowering it would drop copies the
 *                    cluster needs when they come back)
 */
export type ReplicaSetting = number | 'auto';

/** More copies than three cost writes and buy little: three survive one server down (a quorum of two). */
export const AUTO_REPLICAS_MAX = 3;
/** JetStream's most. */
export const MAX_REPLICAS = 5;

/**
 * The number of copies for a stream. Pure: `clusterSize` is the servers the connection knows of
 * (clusterSizeOf), `existing` the copies the stream has now (undefined: it does not exist yet).
 */
export function chooseReplicas(setting: ReplicaSetting, clusterSize: number, existing?: number): number {
  if (setting !== 'auto') return clamp(Math.trunc(setting));
  const wanted = Math.min(AUTO_REPLICAS_MAX, Math.max(1, Math.trunc(clusterSize)));
  return clamp(Math.max(wanted, existing === undefined ? 1 : Math.trunc(existing)));
}

const clamp = (n: number) => Math.min(MAX_REPLICAS, Math.max(1, Number.isFinite(n) ? n : 1));

/**
 * The servers of the cluster as a connection sees them, from the server's INFO: a clustered server
 * names its cluster and advertises the client URLs of every server it has routes to, its own among
 * them (`connect_urls`). A server down is not advertised: the count is of the servers up now, which
 * is also what JetStream can place copies on.
 */
export function clusterSizeOf(info: { cluster?: string | undefined; connect_urls?: string[] | undefined } | undefined): number {
  if (!info?.cluster) return 1;
  return Math.max(1, new Set(info.connect_urls ?? []).size);
}

/** `NATS_STREAM_REPLICAS` of the streams' owners (API, notifier): `auto` (the default) or 1 to 5. */
export const streamReplicasEnv = z.union([z.literal('auto'), z.coerce.number().int().min(1).max(MAX_REPLICAS)]).default('auto');
