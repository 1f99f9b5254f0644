import { z } from 'zod';
import type { DbTimeouts } from './database.ts';

/**
 * The environment variables of the database calls' deadlines (see `DbTimeouts`), one definition for
 * every service that talks to PostgreSQL (the API and the notifier), spread into its env schema.
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

export type DbEnv = z.output<z.ZodObject<typeof dbEnvShape>>;

/** The pool size and deadlines for `createDb` from the parsed variables. */
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
