import { type RawBuilder, sql } from 'kysely';

/** A query was given an argument it cannot use (a malformed cursor or id): the caller's mistake, do not retry. */
export class QueryInputError extends Error {
  override name = 'QueryInputError';
  readonly retryable = false;
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** How a reader decides whether a host is online: its last heartbeat, its own interval, and this. */
export interface OnlineOptions {
  /** A host is offline after this many of its heartbeat intervals without a heartbeat. */
  offlineAfterMissed: number;
  /**
   * The time to judge at (default: the database's `now()`). Hosts' `last_seen` is the server's time
   * too, so no reader's or worker's clock takes part; pass a time only to look at another moment.
   */
  now?: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Rollout ids are uuid columns: anything else cannot match one (and PostgreSQL would reject it). */
export function isUuid(s: string): boolean {
  return UUID.test(s);
}

export function clampLimit(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(1, Math.trunc(value)));
}

/** `now` undefined: the database's clock. */
export type Online = { n: number; now?: Date | undefined };

export function checkOnline(opts: OnlineOptions): Online {
  if (!(opts.offlineAfterMissed > 0)) throw new QueryInputError('offlineAfterMissed', 'must be a positive number');
  return { n: opts.offlineAfterMissed, now: opts.now };
}

/**
 * SQL for "the host row `h` is online at `now`": its last heartbeat is at most `n` of its own
 * intervals old. A missing row (never seen) is offline.
 */
export function onlineSql(h: string, o: Online): RawBuilder<boolean> {
  return sql<boolean>`coalesce(${sql.ref(`${h}.last_seen`)} + ${offlineWindowSql(h, o)} >= ${judgedAt(o.now)}, false)`;
}

/** The host row `h`'s offline window: `n` of its own heartbeat intervals. */
function offlineWindowSql(h: string, o: Online): RawBuilder<unknown> {
  return sql`make_interval(secs => ${sql.ref(`${h}.heartbeat_interval_seconds`)} * ${o.n}::float8)`;
}

/**
 * SQL for "the host row `h` is flagged as two workers with one host id at `now`": two instances
 * alternated within its offline window (see the notifier's instances.ts).
 */
export function duplicateSql(h: string, o: Online): RawBuilder<boolean> {
  return sql<boolean>`coalesce(${sql.ref(`${h}.duplicate_at`)} + ${offlineWindowSql(h, o)} >= ${judgedAt(o.now)}, false)`;
}

/** SQL for how many worker instances the host row `h` heard from within its offline window. */
export function instancesSql(h: string, o: Online): RawBuilder<number> {
  return sql<number>`(select count(*) from jsonb_each_text(${sql.ref(`${h}.instances`)}) i where i.value::timestamptz + ${offlineWindowSql(h, o)} >= ${judgedAt(o.now)})::int`;
}

/**
 * How long after the notifier's last sign of life hosts are still judged: a little more than the
 * notifier's tick (NOTIFIER_CLOCK_TICK_MS), so a live notifier never holds the clock back.
 */
export const NOTIFIER_CLOCK_SLACK_SECONDS = 3;

/**
 * The time hosts are judged at: `now`, but never later than the notifier's last sign of life (plus
 * slack). Heartbeats reach the database only through the notifier, so while it is down (or behind)
 * every host's last heartbeat stands still: judging them by the wall clock would call the whole fleet
 * offline and every waiting rollout complete. With no notifier row yet, `now` as it is. Both are the
 * database's clock (`alive_at` is written with `now()` too).
 */
function judgedAt(at: Date | undefined): RawBuilder<Date> {
  const now = at === undefined ? sql`now()` : sql`${at}::timestamptz`;
  return sql<Date>`least(${now}, coalesce((select alive_at + make_interval(secs => ${NOTIFIER_CLOCK_SLACK_SECONDS}) from notifier_clock where id = 1), ${now}))`;
}

export function iso(d: Date | string): string {
  return (d instanceof Date ? d : new Date(d)).toISOString();
}

export function isoOrNull(d: Date | string | null): string | null {
  return d === null ? null : iso(d);
}
