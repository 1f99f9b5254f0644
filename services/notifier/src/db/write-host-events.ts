import type { CronRunReport, GroupResult, PruneReport } from '@nebula/contracts';
import { type Database, type Kysely, sql, type Transaction } from '@nebula/db';
import type { Rejection } from '../authenticate.ts';
import type { HostEvent } from '../host-events.ts';
import { compareReceived, isoMicros, type Received } from '../stream-consumer.ts';
import { newestResults, upsertRolloutHosts } from './write-results.ts';

/**
 * Writes one batch of host events in one transaction, each kind where its readers look:
 *
 *   group  ─▶ rollout_hosts of its rollout (a 'group' rollout of that very group, else dropped:
 *             unknown_rollout), as an app's result is written (write-results.ts): containers [],
 *             no image digest, the newest by server time wins, a repeat changes nothing
 *   cron   ─▶ cron_job_runs of the job's incarnation whose cron_job_id range covers the report's
 *             (live or deleted; none: dropped, unknown_cron_job); unique (incarnation, host, started_at),
 *             so a redelivered report is written once
 *   prune  ─▶ host_prunes, one row per (host, group, prune_id), replaced only by a newer report
 *             with another outcome
 *
 * Returns the rows inserted or changed, and one rejection per event dropped (counted by the caller
 * once the transaction committed).
 */
export interface HostEventsWritten {
  changed: number;
  dropped: Array<{ kind: HostEvent['kind']; reason: Rejection }>;
}

export async function writeHostEvents(db: Kysely<Database>, events: Received<HostEvent>[]): Promise<HostEventsWritten> {
  const groups: Received<GroupResult>[] = [];
  const crons: Received<CronRunReport>[] = [];
  const prunes: Received<PruneReport>[] = [];
  for (const e of events) {
    const { ns, seq } = e;
    if (e.value.kind === 'group') groups.push({ value: e.value.value, ns, seq });
    else if (e.value.kind === 'cron') crons.push({ value: e.value.value, ns, seq });
    else prunes.push({ value: e.value.value, ns, seq });
  }
  if (events.length === 0) return { changed: 0, dropped: [] };
  return db.transaction().execute(async (trx) => {
    const g = await writeGroupResults(trx, groups);
    const c = await writeCronRuns(trx, crons);
    const p = await writePrunes(trx, prunes);
    return {
      changed: g.changed + c.changed + p,
      dropped: [
        ...Array.from({ length: g.unknown }, () => ({ kind: 'group' as const, reason: 'unknown_rollout' as const })),
        ...Array.from({ length: c.unknown }, () => ({ kind: 'cron' as const, reason: 'unknown_cron_job' as const })),
      ],
    };
  });
}

async function writeGroupResults(trx: Transaction<Database>, results: Received<GroupResult>[]): Promise<{ changed: number; unknown: number }> {
  if (results.length === 0) return { changed: 0, unknown: 0 };
  const ids = [...new Set(results.map((r) => r.value.rollout_id))];
  // Only a group's own rollouts: a host following g cannot write into an app's rollout, nor another group's.
  const found = await trx
    .selectFrom('rollouts')
    .select([sql<string>`id::text`.as('id'), 'device_group'])
    .where(sql<boolean>`id = any(${ids}::uuid[])`)
    .where('kind', '=', 'group')
    .execute();
  const groupOf = new Map(found.map((r) => [r.id, r.device_group]));
  const known = results.filter((r) => groupOf.get(r.value.rollout_id) === r.value.device_group);
  const rows = newestResults(known).map(({ value: r, ns }) => ({
    rollout_id: r.rollout_id,
    host: r.host,
    status: r.status,
    error: r.error,
    image_digest: null,
    containers: '[]',
    pull_ms: 0,
    apply_ms: 0,
    reported_at: isoMicros(ns),
  }));
  return { changed: await upsertRolloutHosts(trx, rows), unknown: results.length - known.length };
}

async function writeCronRuns(trx: Transaction<Database>, runs: Received<CronRunReport>[]): Promise<{ changed: number; unknown: number }> {
  if (runs.length === 0) return { changed: 0, unknown: 0 };
  const wanted = [...new Map(runs.map((r) => [`${r.value.job}\u0000${r.value.cron_job_id}`, r.value])).values()];
  // Incarnations of one name hold disjoint, growing ranges of cron_job_id (a re-created job starts
  // above every id its name had), so the one covering id n is the one with the least cron_job_id ≥ n.
  const found = await sql<{ name: string; id: number; incarnation: string }>`
    select distinct on (x.name, x.id) x.name, x.id, j.incarnation::text as incarnation
      from unnest(${wanted.map((w) => w.job)}::text[], ${wanted.map((w) => w.cron_job_id)}::int[]) as x(name, id)
      join cron_jobs j on j.name = x.name and j.cron_job_id >= x.id
     order by x.name, x.id, j.cron_job_id`.execute(trx);
  const incarnationOf = new Map(found.rows.map((r) => [`${r.name}\u0000${r.id}`, r.incarnation]));
  const rows = [];
  let unknown = 0;
  for (const { value: r } of [...runs].sort(compareReceived)) {
    const incarnation = incarnationOf.get(`${r.job}\u0000${r.cron_job_id}`);
    if (incarnation === undefined) {
      unknown += 1;
      continue;
    }
    rows.push({
      incarnation,
      cron_job_id: r.cron_job_id,
      host_id: r.host,
      started_at: r.started_at,
      finished_at: r.finished_at,
      exit_code: r.exit_code,
      timed_out: r.timed_out,
      log_tail: r.log_tail,
      container: r.container,
      error: r.error,
    });
  }
  if (rows.length === 0) return { changed: 0, unknown };
  // One run is reported once, when it ends: a second report of it (a redelivery) is the same run.
  const res = await trx
    .insertInto('cron_job_runs')
    .values(rows)
    .onConflict((oc) => oc.columns(['incarnation', 'host_id', 'started_at']).doNothing())
    .executeTakeFirst();
  return { changed: Number(res.numInsertedOrUpdatedRows ?? 0n), unknown };
}

const pruneKey = (p: PruneReport) => `${p.host}\u0000${p.device_group}\u0000${p.prune_id}`;

async function writePrunes(trx: Transaction<Database>, reports: Received<PruneReport>[]): Promise<number> {
  const newest = new Map<string, Received<PruneReport>>();
  for (const r of reports) {
    const seen = newest.get(pruneKey(r.value));
    if (!seen || compareReceived(r, seen) > 0) newest.set(pruneKey(r.value), r);
  }
  if (newest.size === 0) return 0;
  // A stable order over keys: replicas writing overlapping batches lock rows in the same order.
  const rows = [...newest.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, { value: p, ns }]) => ({
      host: p.host,
      device_group: p.device_group,
      prune_id: p.prune_id,
      bytes_freed: p.bytes_freed,
      images_removed: p.images_removed,
      error: p.error,
      reported_at: isoMicros(ns),
    }));
  const res = await trx
    .insertInto('host_prunes')
    .values(rows)
    .onConflict((oc) =>
      oc
        .columns(['host', 'device_group', 'prune_id'])
        .doUpdateSet((eb) => ({
          bytes_freed: eb.ref('excluded.bytes_freed'),
          images_removed: eb.ref('excluded.images_removed'),
          error: eb.ref('excluded.error'),
          reported_at: eb.ref('excluded.reported_at'),
        }))
        .where('host_prunes.reported_at', '<', (eb) => eb.ref('excluded.reported_at'))
        .where(
          sql<boolean>`(host_prunes.bytes_freed, host_prunes.images_removed, host_prunes.error) is distinct from (excluded.bytes_freed, excluded.images_removed, excluded.error)`,
        ),
    )
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n);
}
