import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type ControlPlaneKeys, pushAccountRevocations } from '@nebula/bus-auth';
import {
  deleteHostConsumers,
  deleteHostGroupConsumer,
  ensureHostConsumers,
  ensureHostGroupConsumer,
  type HostConsumerTuning,
  HUB_DOMAIN,
  type Region,
} from '@nebula/messaging';

/**
 * What host enrolment needs of NATS, and nothing more: a host's consumers on APPS and, for a host that
 * follows a device group, its consumer on GROUPS (the control plane makes them; a host may only read
 * them), and the account's revocation list. Every call has a deadline.
 *
 * `region` is the host's (from its join token): its consumers live in that region's JetStream domain,
 * next to the region's mirrors of APPS and GROUPS, since its worker reaches only the region's leaf
 * servers. Null: the hub's, as for every host before regions.
 */
export interface HostBus {
  ensureConsumers(hostId: string, region: string | null, apps: readonly string[], tuning: HostConsumerTuning): Promise<void>;
  deleteConsumers(hostId: string, region: string | null, apps: readonly string[]): Promise<void>;
  /** The host's consumer on GROUPS for `group` (a group that has no message yet is fine: the consumer waits for its first). */
  ensureGroupConsumer(hostId: string, region: string | null, group: string, tuning: HostConsumerTuning): Promise<void>;
  /** A missing one is fine. */
  deleteGroupConsumer(hostId: string, region: string | null, group: string): Promise<void>;
  /**
   * Replaces the servers' revocation list of the NEBULA account (key -> unix seconds): on the hub's
   * servers and on each region's, separately. Rejects (RevocationPushError) when any of them did not
   * take it; the others have it all the same.
   */
  pushRevocations(list: Record<string, number>): Promise<void>;
}

/** Some servers did not take the revocation list; `failed` names them (`hub` or a region). Retryable. */
export class RevocationPushError extends Error {
  override name = 'RevocationPushError';
  readonly failed: string[];
  constructor(failed: { target: string; err: unknown }[]) {
    const why = failed.map((f) => `${f.target}: ${f.err instanceof Error ? f.err.message : String(f.err)}`).join('; ');
    super(`the revocation list did not reach ${failed.map((f) => f.target).join(', ')} (${why})`, {
      cause: failed.length === 1 ? failed[0]?.err : new AggregateError(failed.map((f) => f.err)),
    });
    this.failed = failed.map((f) => f.target);
  }
}

export interface NatsHostBusOptions {
  nc: NatsConnection;
  keys: ControlPlaneKeys;
  /** The hub's servers the account update goes to (a system user connection of its own). */
  servers: string[];
  /** The regions (NATS_REGIONS): the account update goes to each one's servers too. */
  regions?: readonly Region[];
  /** PEM text of a private CA, for those connections. */
  tlsCa?: string | undefined;
  timeoutMs?: number;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const isLoopbackUrl = (url: string) => URL.canParse(url) && LOOPBACK.has(new URL(url).hostname);

export function natsHostBus(opts: NatsHostBusOptions): HostBus {
  const timeoutMs = opts.timeoutMs ?? 5000;
  // The API's connection is to the hub: a region's domain is reached through its leaf connection.
  const jsm = (region: string | null) => jetstreamManager(opts.nc, region === null ? { timeout: timeoutMs } : { timeout: timeoutMs, domain: region });
  const targets = [{ name: HUB_DOMAIN, servers: opts.servers }, ...(opts.regions ?? [])];
  // TLS as the API's own connection does it (a private CA means TLS), but per target: a hub on
  // loopback without TLS next to regions reached over TLS (one machine, the tests) works too.
  const tlsFor = (servers: string[]) => {
    const ca = opts.tlsCa !== undefined ? { ca: opts.tlsCa } : {};
    if (servers.some((s) => s.startsWith('tls://'))) return { tls: ca };
    return opts.tlsCa !== undefined && !servers.every(isLoopbackUrl) ? { tls: ca } : {};
  };
  return {
    async ensureConsumers(hostId, region, apps, tuning) {
      await ensureHostConsumers(await jsm(region), hostId, apps, tuning);
    },
    async deleteConsumers(hostId, region, apps) {
      await deleteHostConsumers(await jsm(region), hostId, apps);
    },
    async ensureGroupConsumer(hostId, region, group, tuning) {
      await ensureHostGroupConsumer(await jsm(region), hostId, group, tuning);
    },
    async deleteGroupConsumer(hostId, region, group) {
      await deleteHostGroupConsumer(await jsm(region), hostId, group);
    },
    async pushRevocations(list) {
      // Each target on its own connection and deadline: a region that is away does not hold up the others.
      const outcomes = await Promise.allSettled(
        targets.map((t) => pushAccountRevocations(opts.keys, list, { servers: t.servers, timeoutMs, ...tlsFor(t.servers) })),
      );
      const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ target: targets[i]?.name ?? '?', err: o.reason as unknown }] : []));
      if (failed.length > 0) throw new RevocationPushError(failed);
    },
  };
}
