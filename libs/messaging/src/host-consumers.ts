import { AckPolicy, type ConsumerConfig, DeliverPolicy, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { consumerName, groupConsumerName } from '@nebula/bus-auth';
import { groupSubjects, streams, subjects } from '@nebula/contracts';
import { type EnsureConsumerOutcome, ensureConsumer } from './consumers.ts';

/**
 * A host's durable consumers on APPS, one per app it serves. The control plane creates them (at
 * join, and when a host asks again after one was forgotten); a host may only read and ack them.
 */
export interface HostConsumerTuning {
  /** How long a delivered revision waits for its ack before it comes back (the worker extends it while working). */
  ackWaitMs: number;
  /** A consumer whose host is away this long is removed by the server; the host asks for it again. */
  inactiveThresholdMs: number;
  maxAckPending: number;
}

export const DEFAULT_HOST_CONSUMER_TUNING: HostConsumerTuning = { ackWaitMs: 30_000, inactiveThresholdMs: 72 * 3_600_000, maxAckPending: 8 };

const NS_PER_MS = 1_000_000;

export function hostConsumerConfig(hostId: string, app: string, tuning: HostConsumerTuning): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: consumerName(hostId, app),
    filter_subject: subjects.app(app),
    ack_policy: AckPolicy.Explicit,
    // A new host starts from the app's current revision, not from its history.
    deliver_policy: DeliverPolicy.LastPerSubject,
    max_deliver: -1,
    ack_wait: tuning.ackWaitMs * NS_PER_MS,
    max_ack_pending: tuning.maxAckPending,
    inactive_threshold: tuning.inactiveThresholdMs * NS_PER_MS,
  };
}

/** Creates the consumer when missing, brings its tuning up to date otherwise (never a second one). */
export async function ensureHostConsumer(jsm: JetStreamManager, hostId: string, app: string, tuning: HostConsumerTuning): Promise<EnsureConsumerOutcome> {
  return (await ensureConsumer(jsm, streams.apps.name, hostConsumerConfig(hostId, app, tuning), ['ack_wait', 'max_ack_pending', 'inactive_threshold'])).outcome;
}

export async function ensureHostConsumers(jsm: JetStreamManager, hostId: string, apps: readonly string[], tuning: HostConsumerTuning): Promise<void> {
  for (const app of apps) await ensureHostConsumer(jsm, hostId, app, tuning);
}

/** Removes every consumer of the host (a revoked host). Missing ones are fine. */
export async function deleteHostConsumers(jsm: JetStreamManager, hostId: string, apps: readonly string[]): Promise<void> {
  for (const app of apps) {
    await jsm.consumers.delete(streams.apps.name, consumerName(hostId, app)).catch((err: unknown) => {
      if (!(err instanceof JetStreamApiError && err.code === 10014)) throw err;
    });
  }
}

/**
 * A host's durable consumer on GROUPS for its device group: the group's newest message first (a
 * host that was away converges to the group as it is now), then every later one.
 */
export function hostGroupConsumerConfig(hostId: string, group: string, tuning: HostConsumerTuning): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    ...hostConsumerConfig(hostId, 'unused', tuning),
    durable_name: groupConsumerName(hostId, group),
    filter_subject: groupSubjects.group(group),
  };
}

export async function ensureHostGroupConsumer(
  jsm: JetStreamManager,
  hostId: string,
  group: string,
  tuning: HostConsumerTuning,
): Promise<EnsureConsumerOutcome> {
  return (await ensureConsumer(jsm, streams.groups.name, hostGroupConsumerConfig(hostId, group, tuning), ['ack_wait', 'max_ack_pending', 'inactive_threshold']))
    .outcome;
}

/** Removes a host's group consumer (a host that left the group, or was revoked). A missing one is fine. */
export async function deleteHostGroupConsumer(jsm: JetStreamManager, hostId: string, group: string): Promise<void> {
  await jsm.consumers.delete(streams.groups.name, groupConsumerName(hostId, group)).catch((err: unknown) => {
    if (!(err instanceof JetStreamApiError && err.code === 10014)) throw err;
  });
}
