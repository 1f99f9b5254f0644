import type {
  RolloutAction,
  RolloutFailure,
  RolloutHost,
  RolloutHostRegion,
  RolloutHostState,
  RolloutList,
  RolloutProgress,
  RolloutState,
  RolloutSummary,
  RolloutWave,
} from '@nebula/contracts';
import { rolloutRegions } from '@nebula/contracts';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Database } from './database.ts';
import { checkOnline, clampLimit, iso, isoOrNull, isUuid, type Online, type OnlineOptions, onlineSql, QueryInputError } from './query-input.ts';

/**
 * Rollout progress, computed when asked from three tables: the rollout (its expected hosts, written
 * by the API), the hosts' results (rollout_hosts) and the hosts' heartbeats (hosts), both written by
 * the notifier. Nothing is stored per rollout, so a host's state is always judged against its latest
 * heartbeat:
 *
 *   host in expected ∪ reported ──has a result──▶ applied | failed | superseded
 *          │ no result
 *          ├── online now  ──▶ pending   (waited for: the rollout is not complete)
 *          └── offline now ──▶ offline   (not waited for; counts again once it reports)
 */

/**
 * One row per host of rollout `r`: the expected hosts joined with every host that reported (a host
 * that was not expected, e.g. one that joined later, counts once it reports).
 */
function rolloutHostsSql(r: string, o: Online): RawBuilder<unknown> {
  const ref = sql.ref;
  return sql`
    select coalesce(e.host, rh.host) as host,
           e.host is not null as expected,
           rh.status, rh.error, rh.image_digest, rh.pull_ms, rh.apply_ms, rh.reported_at,
           ${onlineSql('h', o)} as online
      from (select distinct unnest(${ref(`${r}.expected_hosts`)}) as host) e
      full join (select * from rollout_hosts where rollout_id = ${ref(`${r}.id`)}) rh on rh.host = e.host
      left join hosts h on h.id = coalesce(e.host, rh.host)`;
}

export interface SummaryRow {
  id: string;
  kind: 'app' | 'group';
  app: string;
  incarnation: string;
  revision: number;
  action: string;
  created_at: Date;
  published_at: Date | null;
  publish_error: string | null;
  expected: number;
  reported: number;
  applied: number;
  expected_applied: number;
  failed: number;
  superseded: number;
  pending: number;
  offline: number;
  joined: number;
  first_result_at: Date | null;
  last_result_at: Date | null;
  p50: number | null;
  p99: number | null;
  superseded_by: string | null;
  state: string | null;
  wave: number | null;
  abort_reason: string | null;
  rollback_rollout_id: string | null;
}

/**
 * Summaries of the rollouts `r` that `where` selects, ordered by `orderBy`. Percentiles are
 * nearest-rank (`percentile_disc`): always a duration some host really took.
 */
function summariesSql(where: RawBuilder<unknown>, o: Online, tail: RawBuilder<unknown> = sql``): RawBuilder<SummaryRow> {
  return sql<SummaryRow>`
    select r.id::text as id, r.kind, r.app, r.incarnation::text as incarnation, r.revision, r.action, r.created_at, r.published_at, r.publish_error,
           c.expected, c.reported, c.applied, c.expected_applied, c.failed, c.superseded, c.pending, c.offline, c.joined,
           c.first_result_at, c.last_result_at, c.p50, c.p99, s.id::text as superseded_by,
           r.state, r.wave, r.abort_reason, r.rollback_rollout_id::text as rollback_rollout_id
      from rollouts r
     cross join lateral (
       select count(*) filter (where x.expected)::int as expected,
              count(x.status)::int as reported,
              count(*) filter (where x.status = 'applied')::int as applied,
              count(*) filter (where x.status = 'applied' and x.expected)::int as expected_applied,
              count(*) filter (where x.status = 'failed')::int as failed,
              count(*) filter (where x.status = 'superseded')::int as superseded,
              count(*) filter (where x.status is null and x.online)::int as pending,
              count(*) filter (where x.status is null and not x.online)::int as offline,
              count(*) filter (where x.status is not null and not x.expected)::int as joined,
              min(x.reported_at) as first_result_at,
              max(x.reported_at) as last_result_at,
              percentile_disc(0.5) within group (order by x.apply_ms) filter (where x.status = 'applied') as p50,
              percentile_disc(0.99) within group (order by x.apply_ms) filter (where x.status = 'applied') as p99
         from (${rolloutHostsSql('r', o)}) x
     ) c
      left join lateral (
        -- The newest later revision of the app, across incarnations (a re-created app supersedes too);
        -- of a device group, its newest later message (an app and a group may share a name).
        select n.id from rollouts n
         where n.app = r.app and n.kind = r.kind
           and (n.incarnation > r.incarnation or (n.incarnation = r.incarnation and n.revision > r.revision))
         order by n.incarnation desc, n.revision desc, n.created_at desc
         limit 1
      ) s on true
     where ${where}
     ${tail}`;
}

const FINAL_STATES = new Set(['succeeded', 'failed', 'aborted', 'rolled_back']);

/**
 * One summary. All at once (state null): one wave of 100% whose counts are the rollout's, the state
 * derived (rolling until complete, then succeeded or failed). In waves: the controller's state and
 * waves; `complete` once the state is final (members not reached yet are pending until then).
 */
function toSummary(row: SummaryRow, waves: RolloutWave[] | undefined): RolloutSummary {
  const inWaves = row.state !== null;
  const complete = inWaves ? FINAL_STATES.has(row.state ?? '') : row.pending === 0 || row.publish_error !== null;
  // Not merely done waiting: every host it was meant for applied it. Nothing to apply it to is no success.
  const allApplied = row.expected > 0 && row.expected_applied === row.expected;
  return {
    id: row.id,
    kind: row.kind,
    app: row.app,
    incarnation: Number(row.incarnation),
    revision: row.revision,
    action: row.action as RolloutAction,
    created_at: iso(row.created_at),
    published_at: isoOrNull(row.published_at),
    publish_error: row.publish_error,
    expected: row.expected,
    reported: row.reported,
    applied: row.applied,
    failed: row.failed,
    superseded: row.superseded,
    pending: row.pending,
    offline: row.offline,
    joined: row.joined,
    // A rollout that can never be published waits for nothing more.
    complete,
    succeeded: inWaves ? row.state === 'succeeded' : allApplied,
    superseded_by: row.superseded_by,
    first_result_at: isoOrNull(row.first_result_at),
    last_result_at: isoOrNull(row.last_result_at),
    apply_ms: { p50: row.p50 === null ? null : Number(row.p50), p99: row.p99 === null ? null : Number(row.p99) },
    ...(inWaves
      ? {
          state: row.state as RolloutState,
          wave: Math.max(1, row.wave ?? 1),
          waves: waves ?? [],
          abort_reason: row.abort_reason,
          rollback_rollout_id: row.rollback_rollout_id,
        }
      : allAtOnce(row, complete, allApplied)),
  };
}

function allAtOnce(
  row: SummaryRow,
  complete: boolean,
  succeeded: boolean,
): Pick<RolloutSummary, 'state' | 'wave' | 'waves' | 'abort_reason' | 'rollback_rollout_id'> {
  return {
    state: !complete ? 'rolling' : succeeded ? 'succeeded' : 'failed',
    wave: 1,
    waves: [
      {
        percent: 100,
        hosts: row.expected,
        applied: row.expected_applied,
        failed: row.failed,
        started_at: isoOrNull(row.published_at),
        finished_at: complete ? isoOrNull(row.last_result_at) : null,
      },
    ],
    abort_reason: null,
    rollback_rollout_id: null,
  };
}

/** The waves of the rollouts in waves among `rows`, with each wave's own hosts' results (one query). */
async function wavesOf(db: Kysely<Database>, rows: SummaryRow[]): Promise<Map<string, RolloutWave[]>> {
  const ids = rows.filter((r) => r.state !== null).map((r) => r.id);
  const out = new Map<string, RolloutWave[]>();
  if (ids.length === 0) return out;
  const found = await sql<{
    rollout_id: string;
    percent: number;
    hosts: number;
    applied: number;
    failed: number;
    started_at: Date | null;
    finished_at: Date | null;
  }>`
    select w.rollout_id::text as rollout_id, w.percent, cardinality(w.hosts) as hosts, c.applied, c.failed, w.started_at, w.finished_at
      from rollout_waves w
     cross join lateral (
       select count(*) filter (where rh.status = 'applied')::int as applied,
              count(*) filter (where rh.status = 'failed')::int as failed
         from rollout_hosts rh
        where rh.rollout_id = w.rollout_id and rh.host = any(w.hosts)
     ) c
     where w.rollout_id = any(${ids}::uuid[])
     order by w.rollout_id, w.wave`.execute(db);
  for (const w of found.rows) {
    const list = out.get(w.rollout_id) ?? [];
    list.push({
      percent: Number(w.percent),
      hosts: w.hosts,
      applied: w.applied,
      failed: w.failed,
      started_at: isoOrNull(w.started_at),
      finished_at: isoOrNull(w.finished_at),
    });
    out.set(w.rollout_id, list);
  }
  return out;
}

export interface RolloutProgressOptions extends OnlineOptions {
  /** Hosts per page (default 100, at most 1000), by host id. */
  hostsLimit?: number;
  /** The `hosts_next` of the previous page. */
  hostsAfter?: string;
  /** Only hosts in this state. */
  hostState?: RolloutHostState;
  /** At most this many failures in `failures` (default 100, at most 1000). */
  failuresLimit?: number;
}

/** The progress of one rollout, or null when there is no such rollout. */
export async function getRolloutProgress(db: Kysely<Database>, rolloutId: string, opts: RolloutProgressOptions): Promise<RolloutProgress | null> {
  if (!isUuid(rolloutId)) return null;
  const o = checkOnline(opts);
  const hostsLimit = clampLimit(opts.hostsLimit, 100, 1000);
  const failuresLimit = clampLimit(opts.failuresLimit, 100, 1000);

  const summaries = await summariesSql(sql`r.id = ${rolloutId}::uuid`, o).execute(db);
  const row = summaries.rows[0];
  if (!row) return null;

  const stateSql = sql`coalesce(x.status, case when x.online then 'pending' else 'offline' end)`;
  const hostRows = await sql<{
    host: string;
    state: RolloutHostState;
    expected: boolean;
    online: boolean;
    error: string | null;
    image_digest: string | null;
    pull_ms: number | null;
    apply_ms: number | null;
    reported_at: Date | null;
  }>`
    select x.host, ${stateSql} as state, x.expected, x.online, x.error, x.image_digest, x.pull_ms, x.apply_ms, x.reported_at
      from rollouts r
     cross join lateral (${rolloutHostsSql('r', o)}) x
     where r.id = ${rolloutId}::uuid
       ${opts.hostsAfter === undefined ? sql`` : sql`and x.host > ${opts.hostsAfter}`}
       ${opts.hostState === undefined ? sql`` : sql`and ${stateSql} = ${opts.hostState}`}
     order by x.host
     limit ${hostsLimit + 1}`.execute(db);
  const page = hostRows.rows.slice(0, hostsLimit);
  const hosts: RolloutHost[] = page.map((h) => ({
    host: h.host,
    state: h.state,
    expected: h.expected,
    online: h.online,
    error: h.error,
    image_digest: h.image_digest,
    durations_ms: h.reported_at === null ? null : { pull: h.pull_ms ?? 0, apply: h.apply_ms ?? 0 },
    reported_at: isoOrNull(h.reported_at),
  }));

  const failureRows = await db
    .selectFrom('rollout_hosts')
    .select(['host', 'error', 'reported_at'])
    .where('rollout_id', '=', rolloutId)
    .where('status', '=', 'failed')
    .orderBy('reported_at')
    .orderBy('host')
    .limit(failuresLimit)
    .execute();
  const failures: RolloutFailure[] = failureRows.map((f) => ({ host: f.host, error: f.error, at: iso(f.reported_at) }));

  const waves = await wavesOf(db, [row]);
  return {
    ...toSummary(row, waves.get(row.id)),
    regions: rolloutRegions(await regionRows(db, rolloutId, o)),
    failures,
    hosts,
    hosts_next: hostRows.rows.length > hostsLimit ? (page.at(-1)?.host ?? null) : null,
  };
}

/**
 * The rollout's hosts grouped by region (their credential's; none: the hub), expectation and state:
 * a few rows however many hosts, which rolloutRegions (contracts) turns into the counts per region.
 */
async function regionRows(db: Kysely<Database>, rolloutId: string, o: Online): Promise<RolloutHostRegion[]> {
  const found = await sql<{ region: string | null; expected: boolean; state: RolloutHostState; hosts: number }>`
    select hc.region, x.expected, coalesce(x.status, case when x.online then 'pending' else 'offline' end) as state, count(*)::int as hosts
      from rollouts r
     cross join lateral (${rolloutHostsSql('r', o)}) x
      left join host_credentials hc on hc.host_id = x.host
     where r.id = ${rolloutId}::uuid
     group by 1, 2, 3
     order by 1 nulls first, 2, 3`.execute(db);
  return found.rows;
}

/**
 * The summary columns of the newest rollout of the app whose name is `app` (an SQL expression, so
 * another query can take it as a lateral join: an app with its latest rollout in one statement).
 */
export function latestRolloutSql(app: RawBuilder<unknown>, o: Online): RawBuilder<SummaryRow> {
  return summariesSql(sql`r.app = ${app} and r.kind = 'app'`, o, sql`order by r.created_at desc, r.id desc limit 1`);
}

/** The summary of a row of `latestRolloutSql` (its waves read when it goes out in waves). */
export async function summaryOfRow(db: Kysely<Database>, row: SummaryRow): Promise<RolloutSummary> {
  const waves = await wavesOf(db, [row]);
  return toSummary(row, waves.get(row.id));
}

export interface ListRolloutsOptions extends OnlineOptions {
  /** An app's rollouts (default), or a device group's changes (`app` then names the group). */
  kind?: 'app' | 'group';
  /** Rollouts per page (default 20, at most 100). */
  limit?: number;
  /** The `next` of the previous page: only rollouts older than this one. */
  before?: string;
}

/**
 * An app's rollouts (`kind: 'group'`: a device group's), newest first, each with its summary. An app
 * and a group may share a name: `kind` keeps their rollouts apart.
 */
export async function listRollouts(db: Kysely<Database>, app: string, opts: ListRolloutsOptions): Promise<RolloutList> {
  const o = checkOnline(opts);
  const limit = clampLimit(opts.limit, 20, 100);
  if (opts.before !== undefined && !isUuid(opts.before)) throw new QueryInputError('before', 'must be a rollout id (uuid)');
  const cursor =
    opts.before === undefined ? sql`` : sql`and (r.created_at, r.id) < (select b.created_at, b.id from rollouts b where b.id = ${opts.before}::uuid)`;
  const result = await summariesSql(
    sql`r.app = ${app} and r.kind = ${opts.kind ?? 'app'} ${cursor}`,
    o,
    sql`order by r.created_at desc, r.id desc limit ${limit + 1}`,
  ).execute(db);
  const rows = result.rows.slice(0, limit);
  const waves = await wavesOf(db, rows);
  return {
    rollouts: rows.map((r) => toSummary(r, waves.get(r.id))),
    next: result.rows.length > limit ? (rows.at(-1)?.id ?? null) : null,
  };
}
