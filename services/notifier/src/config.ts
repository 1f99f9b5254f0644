import { readFileSync } from 'node:fs';
import { DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS } from '@nebula/contracts';
import { dbEnvShape } from '@nebula/db';
import { regionsEnv, streamReplicasEnv } from '@nebula/messaging';
import { envVar } from '@nebula/service-kit';
import { z } from 'zod';
import type { NotifierOptions } from './options.ts';

/** The path of a file that must be readable at start-up (its content is never echoed: it holds a key). */
const readablePath = (what: string) =>
  z
    .string()
    .min(1)
    .superRefine((path, ctx) => {
      try {
        readFileSync(path);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `${what} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
      }
    });

export const notifierEnvSchema = z.object({
  ...dbEnvShape,
  DATABASE_URL: envVar.url('postgres://nebula:nebula@127.0.0.1:5432/nebula'),
  /** Comma-separated; outside loopback only with TLS (`tls://`, or NATS_TLS_CA). */
  NATS_URL: envVar.urlList('nats://127.0.0.1:4222'),
  /** The notifier's NATS identity: a creds file (user JWT and key) issued for it. Required. */
  NATS_CREDS: readablePath('the creds file'),
  /** PEM of a private CA the NATS servers' certificates are checked against. */
  NATS_TLS_CA: readablePath('the CA file').optional(),
  /** Copies of the RESULTS and HOSTS streams the notifier keeps in a NATS cluster: 3 on three servers. */
  NATS_STREAM_REPLICAS: streamReplicasEnv,
  /**
   * The regions, as the API takes them (`eu=tls://10.0.0.2:4222,us=...`): the hub's RESULTS, HOSTS
   * and EVENTS source each region's, which the notifier keeps in the region's JetStream domain.
   */
  NATS_REGIONS: regionsEnv,
  /** How often the hosts' registered keys are read again: a revocation takes effect within it. */
  HOST_KEYS_REFRESH_SECONDS: z.coerce.number().min(0.05).max(3600).default(5),
  METRICS_PORT: envVar.port(8082),
  LOG_LEVEL: envVar.logLevel(),
  /** Missed heartbeats (each the host's own interval) before a host counts as offline. */
  HOST_OFFLINE_AFTER_MISSED_HEARTBEATS: z.coerce.number().positive().default(DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS),
  /** Messages per batch (one transaction) and per pull. */
  NOTIFIER_BATCH_SIZE: z.coerce.number().int().min(1).max(5000).default(256),
  /** A batch that is not full is written this long after its first message. */
  NOTIFIER_FLUSH_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(50),
  /** JetStream redelivers a message not acked within this time. */
  NOTIFIER_ACK_WAIT_MS: z.coerce.number().int().min(1000).default(30_000),
  /** How often the rollout controller judges rollouts in waves (and a waiting replica tries its lock). */
  ROLLOUT_CONTROLLER_TICK_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  /** false: this replica never drives rollouts in waves (another one must). */
  ROLLOUT_CONTROLLER_ENABLED: envVar.bool(true),
});
export type NotifierEnv = z.output<typeof notifierEnvSchema>;

export function optionsFromEnv(env: NotifierEnv): NotifierOptions {
  return {
    batchSize: env.NOTIFIER_BATCH_SIZE,
    flushIntervalMs: env.NOTIFIER_FLUSH_INTERVAL_MS,
    ackWaitMs: env.NOTIFIER_ACK_WAIT_MS,
    offlineAfterMissed: env.HOST_OFFLINE_AFTER_MISSED_HEARTBEATS,
    hostKeysRefreshMs: Math.round(env.HOST_KEYS_REFRESH_SECONDS * 1000),
    streamReplicas: env.NATS_STREAM_REPLICAS,
    regions: env.NATS_REGIONS.map((r) => r.name),
    rollouts: { enabled: env.ROLLOUT_CONTROLLER_ENABLED, tickMs: env.ROLLOUT_CONTROLLER_TICK_MS, lockPollMs: env.ROLLOUT_CONTROLLER_TICK_MS },
  };
}
