import { DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS } from '@nebula/contracts';
import { dbEnvShape } from '@nebula/db';
import { envVar } from '@nebula/service-kit';
import { z } from 'zod';
import type { NotifierOptions } from './options.ts';

export const notifierEnvSchema = z.object({
  ...dbEnvShape,
  DATABASE_URL: envVar.url('postgres://nebula:nebula@127.0.0.1:5432/nebula'),
  NATS_URL: envVar.url('nats://127.0.0.1:4222'),
  METRICS_PORT: envVar.port(8082),
  LOG_LEVEL: envVar.logLevel(),
  /** Missed heartbeats (each the host's own interval) before a host counts as offline. */
  HOST_OFFLINE_AFTER_MISSED_HEARTBEATS: z.coerce.number().positive().default(DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS),
  /** Messages per batch (one transaction) and per pull. */
  NOTIFIER_BATCH_SIZE: z.coerce.number().int().min(1).max(5000).default(256),
  /** A batch that is not full is written this long after its first message. */
  NOTIFIER_FLUSH_INTERVAL_MS: z.coerce.number().int().min(1).max(60_000).default(200),
  /** JetStream redelivers a message not acked within this time. */
  NOTIFIER_ACK_WAIT_MS: z.coerce.number().int().min(1000).default(30_000),
});
export type NotifierEnv = z.output<typeof notifierEnvSchema>;

export function optionsFromEnv(env: NotifierEnv): NotifierOptions {
  return {
    batchSize: env.NOTIFIER_BATCH_SIZE,
    flushIntervalMs: env.NOTIFIER_FLUSH_INTERVAL_MS,
    ackWaitMs: env.NOTIFIER_ACK_WAIT_MS,
    offlineAfterMissed: env.HOST_OFFLINE_AFTER_MISSED_HEARTBEATS,
  };
}
