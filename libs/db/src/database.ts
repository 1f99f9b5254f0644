import { type ColumnType, type Generated, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string, string>;

/** One row per incarnation of an app (written by the API). `config` is the current revision's. */
export interface AppsTable {
  incarnation: Generated<string>; // bigserial: pg returns int8 as string
  name: string;
  revision: number;
  config: Json<unknown>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
  deleted_at: Date | null;
}

/** Immutable: one row per revision of an incarnation (written by the API). */
export interface AppRevisionsTable {
  incarnation: string;
  revision: number;
  action: string;
  config: Json<unknown>;
  actor: string | null;
  rollout_id: string;
  created_at: Generated<Date>;
}

/** One per published revision (written by the API). */
export interface RolloutsTable {
  id: string;
  app: string;
  incarnation: string;
  revision: number;
  action: string;
  /** Online hosts serving the app when the rollout was created. */
  expected_hosts: ColumnType<string[], string[] | undefined, string[]>;
  created_at: Generated<Date>;
  published_at: Date | null;
  /** Why the relay could not publish it, when it could not (the outbox row is dead-lettered). */
  publish_error: string | null;
  publish_failed_at: Date | null;
}

/** Messages committed with a change, published to JetStream by the relay (written by the API). */
export interface OutboxTable {
  id: Generated<string>;
  subject: string;
  msg_id: string;
  payload: Json<unknown>;
  created_at: Generated<Date>;
  published_at: Date | null;
  /**
   * Set (with `error`) when the row can never be published: it is not retried, and the app's later
   * rows are published after it all the same.
   */
  dead_at: Date | null;
  error: string | null;
}

/** Hosts, from their heartbeats (written by the notifier). */
export interface HostsTable {
  id: string;
  apps: ColumnType<string[], string[], string[]>;
  /** Per app: incarnation and revision running, container states (from the heartbeat). */
  running: Json<unknown>;
  cores: number;
  memory_mb: number;
  worker_version: string;
  heartbeat_interval_seconds: number;
  /** Server time of the first heartbeat. */
  first_seen: ColumnType<Date, Date | string | undefined, Date | string>;
  /** Server time (JetStream's timestamp) of the newest heartbeat. */
  last_seen: Timestamp;
  /** The worker process (heartbeat `instance`) of the newest heartbeat; null from workers without one. */
  instance: ColumnType<string | null, string | null | undefined, string | null>;
  /** Instances heard within the host's offline window: instance -> last heard (ISO time). */
  instances: ColumnType<Record<string, string>, string | undefined, string>;
  /** When two instances last alternated: two workers with this host id. */
  duplicate_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** One host's result for one rollout (written by the notifier). */
export interface RolloutHostsTable {
  rollout_id: string;
  host: string;
  status: string;
  error: string | null;
  image_digest: string | null;
  containers: Json<unknown>;
  pull_ms: number;
  apply_ms: number;
  reported_at: Timestamp;
}

/** One row (id 1): when the notifier last confirmed it is caught up with heartbeats (written by the notifier). */
export interface NotifierClockTable {
  id: number;
  alive_at: Timestamp;
}

/**
 * The whole PostgreSQL schema. The API and the notifier share one database; each table has one
 * writer (noted on its interface).
 */
export interface Database {
  apps: AppsTable;
  app_revisions: AppRevisionsTable;
  rollouts: RolloutsTable;
  outbox: OutboxTable;
  hosts: HostsTable;
  rollout_hosts: RolloutHostsTable;
  notifier_clock: NotifierClockTable;
}

/**
 * A pool of connections to `url`. When the server goes away (a restart, a failover, an admin's
 * pg_terminate_backend), the pool's idle connections fail with an 'error' event on the pool: without a
 * listener that event would crash the process. The pool drops such a connection by itself and the next
 * query opens a new one, so the error is only passed to `onIdleError` (for a log line).
 */
export function createDb<DB = Database>(url: string, max = 10, opts: { onIdleError?: (err: Error) => void } = {}): Kysely<DB> {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', (err) => opts.onIdleError?.(err));
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

export async function pingDb<DB>(db: Kysely<DB>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
