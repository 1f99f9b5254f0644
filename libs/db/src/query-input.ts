import { sql, type RawBuilder } from 'kysely';

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
  /** The time to judge at (default: now). */
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

export function checkOnline(opts: OnlineOptions): { n: number; now: Date } {
  if (!(opts.offlineAfterMissed > 0)) throw new QueryInputError('offlineAfterMissed', 'must be a positive number');
  return { n: opts.offlineAfterMissed, now: opts.now ?? new Date() };
}

/**
 * SQL for "the host row `h` is online at `now`": its last heartbeat is at most `n` of its own
 * intervals old. A missing row (never seen) is offline.
 */
export function onlineSql(h: string, o: { n: number; now: Date }): RawBuilder<boolean> {
  const ref = sql.ref;
  return sql<boolean>`coalesce(${ref(`${h}.last_seen`)} + make_interval(secs => ${ref(`${h}.heartbeat_interval_seconds`)} * ${o.n}::float8) >= ${judgedAt(o.now)}, false)`;
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
 * offline and every waiting rollout complete. With no notifier row yet, `now` as it is.
 */
function judgedAt(now: Date): RawBuilder<Date> {
  return sql<Date>`least(${now}::timestamptz, coalesce((select alive_at + make_interval(secs => ${NOTIFIER_CLOCK_SLACK_SECONDS}) from notifier_clock where id = 1), ${now}::timestamptz))`;
}

export function iso(d: Date | string): string {
  return (d instanceof Date ? d : new Date(d)).toISOString();
}

export function isoOrNull(d: Date | string | null): string | null {
  return d === null ? null : iso(d);
}
