import { type ColumnType, type Generated, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { BoundedPool } from './bounded-pool.ts';

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
  /** Why the revision was made when no person made it (e.g. a rollback by the rollout controller). */
  reason: ColumnType<string | null, string | null | undefined, string | null>;
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
  /** The app's rollout_strategy when it went out in waves; null: all at once (state derived from results). */
  strategy: ColumnType<unknown, string | null | undefined, string | null>;
  /** Rollouts in waves: rolling | paused | succeeded | failed | aborted | rolled_back; null: all at once. */
  state: ColumnType<string | null, string | null | undefined, string | null>;
  /** Hosts serving the app when it started (online or not), in rollout order. */
  members: ColumnType<string[] | null, string[] | null | undefined, string[] | null>;
  /** The current wave (1-based). */
  wave: ColumnType<number | null, number | null | undefined, number | null>;
  /** The `wave.step` of its newest message: grows with every wave started and every retry. */
  step: ColumnType<number | null, number | null | undefined, number | null>;
  /** The revision hosts outside the waves run meanwhile (a WaveBase with the full config); null: none. */
  base: ColumnType<unknown, string | null | undefined, string | null>;
  /** Why it is paused: manual | promotion | budget. */
  paused_reason: ColumnType<string | null, string | null | undefined, string | null>;
  /** Host -> when its failure was retried: its results from before no longer count. */
  retried: ColumnType<Record<string, string>, string | undefined, string>;
  /** Hosts whose failures a resume accepted: outside the budget from then on. */
  waived: ColumnType<string[], string[] | undefined, string[]>;
  /** 'app', or 'group' for a device group change (then `app` is the group's name, `revision` its message's seq). */
  kind: ColumnType<'app' | 'group', 'app' | 'group' | undefined, 'app' | 'group'>;
  /** The group of a 'group' rollout; null for an app's. */
  device_group: ColumnType<string | null, string | null | undefined, string | null>;
  abort_reason: ColumnType<string | null, string | null | undefined, string | null>;
  rollback_rollout_id: ColumnType<string | null, string | null | undefined, string | null>;
  state_changed_at: NullableTimestamp;
}

/** One per planned wave of a rollout in waves (written with the rollout, then by the controller and commands). */
export interface RolloutWavesTable {
  rollout_id: string;
  wave: number;
  percent: number;
  /** This wave's own hosts, in rollout order. */
  hosts: ColumnType<string[], string[], string[]>;
  /** Its hosts online when it started: the ones in the budget and waited for; null until it starts. */
  counted: ColumnType<string[] | null, string[] | null | undefined, string[] | null>;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
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

/** Hosts, from their heartbeats (written by the notifier; long-offline rows deleted by the API's retention). */
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
  /** The latest usage sample (HostUsage) its heartbeats carried; null: none yet. */
  usage: ColumnType<unknown, string | null | undefined, string | null>;
  /** The device group its newest heartbeat says it follows; null: none. */
  device_group: ColumnType<string | null, string | null | undefined, string | null>;
}

/** One per usage sample of a host (written by the notifier; pruned by the API's retention). */
export interface HostReportsTable {
  id: Generated<string>;
  host: string;
  device_group: string | null;
  /** Server time of the first heartbeat that carried the sample. */
  created_at: Timestamp;
  inserted_at: Generated<Date>;
  /** The worker's time of the sample; with host, unique. */
  gathered_at: Timestamp;
  /** The host's running revisions changed since its previous report. */
  updated: boolean;
  /** app -> "incarnation:revision" running when it was sent. */
  revisions: Json<Record<string, string>>;
  usage: Json<unknown>;
}

/** One host's result for one rollout (written by the notifier; deleted with its rollout by the API's retention). */
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

type TextArray = ColumnType<string[], string[], string[]>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

/** Join tokens (written by the API): the secret itself is never stored, only its SHA-256. */
export interface JoinTokensTable {
  id: string;
  secret_hash: string;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  created_by: string;
  expires_at: Timestamp;
  uses_left: number;
  /** The apps its hosts may serve; null: any. */
  apps: ColumnType<string[] | null, string[] | null | undefined, string[] | null>;
  description: ColumnType<string | null, string | null | undefined, string | null>;
  /** The region its hosts join (NATS_REGIONS); null: the hub. */
  region: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A host's identity on the bus (written by the API, read by the notifier to check signatures). */
export interface HostCredentialsTable {
  host_id: string;
  /** `U...`: the host's NATS user key; it signs its results and heartbeats with it. */
  public_key: string;
  /** From its join token: the apps it may serve; null: any. */
  allowed_apps: ColumnType<string[] | null, string[] | null | undefined, string[] | null>;
  /** The apps its credential and consumers are for (its APP_NAME at the last renewal). */
  apps: TextArray;
  token_id: ColumnType<string | null, string | null | undefined, string | null>;
  joined_at: ColumnType<Date, Date | string | undefined, Date | string>;
  renewed_at: ColumnType<Date, Date | string | undefined, Date | string>;
  /** When its current NATS credential expires. */
  expires_at: Timestamp;
  revoked_at: NullableTimestamp;
  /** The device group its credential and consumer on GROUPS are for (its DEVICE_GROUP at the last renewal); null: none. */
  device_group: ColumnType<string | null, string | null | undefined, string | null>;
  /** The region it joined (its token's; kept at renewals): its consumers are in that region's JetStream domain. Null: the hub. */
  region: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Keys the servers refuse (written by the API): the NEBULA account's revocations. */
export interface RevokedKeysTable {
  public_key: string;
  host_id: string;
  revoked_at: ColumnType<Date, Date | string | undefined, Date | string>;
  /** The last credential issued for the key expires then: the entry can go after it. */
  expires_at: Timestamp;
}

/** An API user (written by the API): hashes only, never a password or token. */
export interface UsersTable {
  user_name: string;
  /** `scrypt$N$r$p$<salt>$<hash>` (base64url); null: no password (token only). */
  password_hash: ColumnType<string | null, string | null | undefined, string | null>;
  /** SHA-256 (hex) of the token; null: no token. */
  token_hash: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

type AccessMap = ColumnType<Record<string, 'ro' | 'rw'>, string | undefined, string>;

/** A user group (written by the API): its members' rights are the union of their groups'. */
export interface UserGroupsTable {
  user_group: string;
  group_members: ColumnType<string[], string[] | undefined, string[]>;
  apps: AccessMap;
  device_groups: AccessMap;
  cron_jobs: AccessMap;
  admin: ColumnType<boolean, boolean | undefined, boolean>;
  pruning_allowed: ColumnType<boolean, boolean | undefined, boolean>;
  privileged_allowed: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** One row per incarnation of a cron job (written by the API); `config` is a CronJobConfig. */
export interface CronJobsTable {
  incarnation: Generated<string>; // bigserial: pg returns int8 as string
  name: string;
  /** 1, +1 per update; a re-created job starts above the deleted one's. */
  cron_job_id: number;
  config: Json<unknown>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
  deleted_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** One row per incarnation of a device group (written by the API). */
export interface DeviceGroupsTable {
  incarnation: Generated<string>; // bigserial: pg returns int8 as string
  name: string;
  /** The original's counter: 1, +1 per change of the lists; a re-created group starts above the deleted one's. */
  device_group_id: number;
  /** 1, +1 per prune (same rule at re-creation). */
  prune_id: number;
  /** +1 per group message (change, prune, listed cron job updated, delete). */
  seq: number;
  apps: ColumnType<string[], string[] | undefined, string[]>;
  cron_jobs: ColumnType<string[], string[] | undefined, string[]>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
  deleted_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** One run of a cron job on a host (written from the hosts' reports, by the part that runs the jobs). */
export interface CronJobRunsTable {
  id: Generated<string>;
  incarnation: string;
  cron_job_id: number;
  host_id: string;
  started_at: Timestamp;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  exit_code: ColumnType<number | null, number | null | undefined, number | null>;
  timed_out: ColumnType<boolean, boolean | undefined, boolean>;
  log_tail: ColumnType<string | null, string | null | undefined, string | null>;
  /** The run's container (`<job>-<unix seconds>`); null for runs written before reports carried it. */
  container: ColumnType<string | null, string | null | undefined, string | null>;
  /** Why it did not run, or could not be waited for; null for a run that ran (whatever its exit code). */
  error: ColumnType<string | null, string | null | undefined, string | null>;
}

/** What one host freed for one prune of its device group (written by the notifier; pruned by the API's retention). */
export interface HostPrunesTable {
  host: string;
  device_group: string;
  prune_id: number;
  /** bigint: pg returns int8 as string. */
  bytes_freed: ColumnType<string, number | string, number | string>;
  images_removed: TextArray;
  error: string | null;
  /** Server time of the report. */
  reported_at: Timestamp;
}

/**
 * The whole PostgreSQL schema. The API and the notifier share one database; each table has one
 * writer (noted on its interface). The one exception is retention (services/api/src/db/retention.ts):
 * the API deletes expired rows of every table it reads, never updates the notifier's.
 */
export interface Database {
  apps: AppsTable;
  app_revisions: AppRevisionsTable;
  rollouts: RolloutsTable;
  rollout_waves: RolloutWavesTable;
  outbox: OutboxTable;
  hosts: HostsTable;
  host_reports: HostReportsTable;
  rollout_hosts: RolloutHostsTable;
  notifier_clock: NotifierClockTable;
  join_tokens: JoinTokensTable;
  host_credentials: HostCredentialsTable;
  revoked_keys: RevokedKeysTable;
  users: UsersTable;
  user_groups: UserGroupsTable;
  cron_jobs: CronJobsTable;
  cron_job_runs: CronJobRunsTable;
  device_groups: DeviceGroupsTable;
  host_prunes: HostPrunesTable;
}

/**
 * Deadlines of every database call (milliseconds). Defaults suit an API whose queries take
 * milliseconds: a PostgreSQL that stops answering turns into DatabaseUnavailableError within
 * seconds instead of a request that hangs.
 */
export interface DbTimeouts {
  /** Opening a connection, and waiting for a free one of the pool (default 5000). */
  connectTimeoutMs?: number;
  /** Server side: a statement running longer is cancelled (SQLSTATE 57014; default 10000). */
  statementTimeoutMs?: number;
  /**
   * Client side: a query with no answer at all (a black-holed server) fails after this long and its
   * connection is destroyed (default statement timeout + 2000, so a slow statement is the server's to cancel).
   */
  queryTimeoutMs?: number;
  /** Server side: a session idle inside a transaction longer is ended (default 30000). */
  idleInTransactionTimeoutMs?: number;
  /** TCP keepalive after this much idle time: a dead peer is noticed on idle connections (default 10000; 0 = off). */
  keepAliveMs?: number;
  /** Callers waiting for a connection beyond this are refused at once (default 100). */
  maxWaiting?: number;
}

export const DB_TIMEOUT_DEFAULTS = {
  connectTimeoutMs: 5000,
  statementTimeoutMs: 10_000,
  idleInTransactionTimeoutMs: 30_000,
  keepAliveMs: 10_000,
  maxWaiting: 100,
} as const;

export interface CreateDbOptions extends DbTimeouts {
  onIdleError?: (err: Error) => void;
}

/** The pg.Pool settings for `createDb` (pure, for tests). */
export function poolConfig(url: string, max: number, t: DbTimeouts = {}): pg.PoolConfig {
  const statement = t.statementTimeoutMs ?? DB_TIMEOUT_DEFAULTS.statementTimeoutMs;
  const keepAlive = t.keepAliveMs ?? DB_TIMEOUT_DEFAULTS.keepAliveMs;
  return {
    connectionString: url,
    max,
    connectionTimeoutMillis: t.connectTimeoutMs ?? DB_TIMEOUT_DEFAULTS.connectTimeoutMs,
    statement_timeout: statement,
    query_timeout: t.queryTimeoutMs ?? statement + 2000,
    idle_in_transaction_session_timeout: t.idleInTransactionTimeoutMs ?? DB_TIMEOUT_DEFAULTS.idleInTransactionTimeoutMs,
    keepAlive: keepAlive > 0,
    keepAliveInitialDelayMillis: keepAlive,
  };
}

/**
 * A pool of connections to `url`, every call with a deadline (`DbTimeouts`); a call that misses one,
 * or finds the waiters' queue full, fails with DatabaseUnavailableError (retryable).
 *
 * When the server goes away (a restart, a failover, an admin's pg_terminate_backend), the pool's idle
 * connections fail with an 'error' event on the pool: without a listener that event would crash the
 * process. The pool drops such a connection by itself and the next query opens a new one, so the
 * error is only passed to `onIdleError` (for a log line).
 */
export function createDb<DB = Database>(url: string, max = 10, opts: CreateDbOptions = {}): Kysely<DB> {
  const pool = new pg.Pool(poolConfig(url, max, opts));
  pool.on('error', (err) => opts.onIdleError?.(err));
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: new BoundedPool(pool, opts.maxWaiting ?? DB_TIMEOUT_DEFAULTS.maxWaiting) }) });
}

export async function pingDb<DB>(db: Kysely<DB>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
