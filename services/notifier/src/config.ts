import { DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS } from '@nebula/contracts';
import type { DbTimeouts } from '@nebula/db';
import { envVar } from '@nebula/service-kit';
import { z } from 'zod';
import type { NotifierOptions } from './options.ts';

/**
 * Deadlines of the database calls (see `DbTimeouts` in @nebula/db): the same variables and
 * defaults as the API's (services/api/src/config.ts).
 */
export const dbEnvShape = {
  DB_POOL_MAX: z.coerce.number().int().min(1).max(1000).default(10),
  DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
  /** Default: DB_STATEMENT_TIMEOUT_MS + 2000. */
  DB_QUERY_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).optional(),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** TCP keepalive after this much idle time (0: off). */
  DB_KEEPALIVE_MS: z.coerce.number().int().min(0).max(3_600_000).default(10_000),
  DB_MAX_WAITING: z.coerce.number().int().min(0).max(100_000).default(100),
};

type DbEnv = z.output<z.ZodObject<typeof dbEnvShape>>;

export function dbOptionsFromEnv(env: DbEnv): { max: number } & DbTimeouts {
  return {
    max: env.DB_POOL_MAX,
    connectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
    ...(env.DB_QUERY_TIMEOUT_MS !== undefined ? { queryTimeoutMs: env.DB_QUERY_TIMEOUT_MS } : {}),
    idleInTransactionTimeoutMs: env.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    keepAliveMs: env.DB_KEEPALIVE_MS,
    maxWaiting: env.DB_MAX_WAITING,
  };
}

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
