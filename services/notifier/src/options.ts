import { DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS } from '@nebula/contracts';
import type { ReplicaSetting } from '@nebula/messaging';

export interface NotifierOptions {
  /** Messages per batch, and per pull from JetStream (default 256, at most 5000). */
  batchSize?: number;
  /**
   * Writes start at most this often (default 50 ms) unless a batch is full: a message that arrives
   * when none started for that long is written at once, the next ones with the next start.
   */
  flushIntervalMs?: number;
  /** How long JetStream waits for an ack before redelivering (default 30 s). */
  ackWaitMs?: number;
  /** Unacked messages per consumer, across replicas (default 20 × batchSize, at least 1000). */
  maxAckPending?: number;
  /** Delay before a message whose write failed is redelivered (default 1 s). */
  retryDelayMs?: number;
  /** Missed heartbeats before a host counts as offline (for the hosts gauge; default from contracts). */
  offlineAfterMissed?: number;
  /** How often the hosts' registered keys are read again (default 5 s): a revocation takes effect within it. */
  hostKeysRefreshMs?: number;
  /** Copies of the RESULTS, HOSTS and EVENTS streams in a NATS cluster (NATS_STREAM_REPLICAS; default `auto`: as many as the cluster has servers, up to 3; or 1 to 5). */
  streamReplicas?: ReplicaSetting;
  /**
   * The regions (NATS_REGIONS, their names): the hub's RESULTS, HOSTS and EVENTS source theirs, and
   * the notifier keeps those streams in each region's JetStream domain (default none).
   */
  regions?: readonly string[];
  /** Durable consumer names; every replica uses the same ones so they share the work. */
  durables?: { results?: string; heartbeats?: string; events?: string };
  /** The rollout controller (rollouts in waves): on by default; one replica at a time drives it. */
  rollouts?: { enabled?: boolean; tickMs?: number; lockPollMs?: number; clock?: (() => Date) | undefined };
}

export type CompiledOptions = Required<Omit<NotifierOptions, 'durables' | 'rollouts' | 'regions'>> & {
  regions: string[];
  durables: { results: string; heartbeats: string; events: string };
  rollouts: { enabled: boolean; tickMs: number; lockPollMs: number; clock?: (() => Date) | undefined };
};

export class NotifierOptionsError extends Error {
  override name = 'NotifierOptionsError';
  readonly retryable = false;
}

function check(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isFinite(value) || value < min || value > max) throw new NotifierOptionsError(`${name} must be between ${min} and ${max} (got ${value})`);
  return value;
}

/** Applies defaults and validates, once, before anything starts. */
export function compileOptions(o: NotifierOptions = {}): CompiledOptions {
  const batchSize = Math.trunc(check('batchSize', o.batchSize ?? 256, 1, 5000));
  return {
    batchSize,
    flushIntervalMs: check('flushIntervalMs', o.flushIntervalMs ?? 50, 0, 60_000),
    ackWaitMs: check('ackWaitMs', o.ackWaitMs ?? 30_000, 1000),
    maxAckPending: Math.trunc(check('maxAckPending', o.maxAckPending ?? Math.max(1000, 20 * batchSize), batchSize)),
    retryDelayMs: check('retryDelayMs', o.retryDelayMs ?? 1000, 0),
    hostKeysRefreshMs: check('hostKeysRefreshMs', o.hostKeysRefreshMs ?? 5000, 50, 3_600_000),
    streamReplicas: o.streamReplicas === undefined || o.streamReplicas === 'auto' ? 'auto' : Math.trunc(check('streamReplicas', o.streamReplicas, 1, 5)),
    offlineAfterMissed: check('offlineAfterMissed', o.offlineAfterMissed ?? DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS, 1),
    regions: [...new Set(o.regions ?? [])].sort(),
    durables: {
      results: o.durables?.results ?? 'notifier-results',
      heartbeats: o.durables?.heartbeats ?? 'notifier-hosts',
      events: o.durables?.events ?? 'notifier-events',
    },
    rollouts: {
      enabled: o.rollouts?.enabled ?? true,
      tickMs: check('rollouts.tickMs', o.rollouts?.tickMs ?? 1000, 10, 60_000),
      lockPollMs: check('rollouts.lockPollMs', o.rollouts?.lockPollMs ?? 1000, 10, 60_000),
      clock: o.rollouts?.clock,
    },
  };
}
