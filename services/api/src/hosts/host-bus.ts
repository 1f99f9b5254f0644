import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type ControlPlaneKeys, pushAccountRevocations } from '@nebula/bus-auth';
import { deleteHostConsumers, deleteHostGroupConsumer, ensureHostConsumers, ensureHostGroupConsumer, type HostConsumerTuning } from '@nebula/messaging';

/**
 * What host enrolment needs of NATS, and nothing more: a host's consumers on APPS and, for a host that
 * follows a device group, its consumer on GROUPS (the control plane makes them; a host may only read
 * them), and the account's revocation list. Every call has a deadline.
 */
export interface HostBus {
  ensureConsumers(hostId: string, apps: readonly string[], tuning: HostConsumerTuning): Promise<void>;
  deleteConsumers(hostId: string, apps: readonly string[]): Promise<void>;
  /** The host's consumer on GROUPS for `group` (a group that has no message yet is fine: the consumer waits for its first). */
  ensureGroupConsumer(hostId: string, group: string, tuning: HostConsumerTuning): Promise<void>;
  /** A missing one is fine. */
  deleteGroupConsumer(hostId: string, group: string): Promise<void>;
  /** Replaces the servers' revocation list of the NEBULA account (key -> unix seconds). */
  pushRevocations(list: Record<string, number>): Promise<void>;
}

export interface NatsHostBusOptions {
  nc: NatsConnection;
  keys: ControlPlaneKeys;
  /** The servers the account update goes to (a system user connection of its own). */
  servers: string[];
  /** PEM text of a private CA, for that connection. */
  tlsCa?: string | undefined;
  timeoutMs?: number;
}

export function natsHostBus(opts: NatsHostBusOptions): HostBus {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const jsm = () => jetstreamManager(opts.nc, { timeout: timeoutMs });
  return {
    async ensureConsumers(hostId, apps, tuning) {
      await ensureHostConsumers(await jsm(), hostId, apps, tuning);
    },
    async deleteConsumers(hostId, apps) {
      await deleteHostConsumers(await jsm(), hostId, apps);
    },
    async ensureGroupConsumer(hostId, group, tuning) {
      await ensureHostGroupConsumer(await jsm(), hostId, group, tuning);
    },
    async deleteGroupConsumer(hostId, group) {
      await deleteHostGroupConsumer(await jsm(), hostId, group);
    },
    async pushRevocations(list) {
      const tls = opts.tlsCa !== undefined ? { tls: { ca: opts.tlsCa } } : opts.servers.some((s) => s.startsWith('tls://')) ? { tls: {} } : {};
      await pushAccountRevocations(opts.keys, list, { servers: opts.servers, timeoutMs, ...tls });
    },
  };
}
