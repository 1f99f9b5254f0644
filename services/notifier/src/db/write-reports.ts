import type { Heartbeat } from '@nebula/contracts';
import type { Database, Transaction } from '@nebula/db';
import { isoMicros, type Received } from '../stream-consumer.ts';

/**
 * Host reports from heartbeats: one row per usage sample. A worker gathers a sample every
 * WORKER_REPORT_INTERVAL_SECONDS and sends the latest one with each heartbeat, so several
 * heartbeats carry the same sample: (host, gathered_at) identifies it, and a sample already stored
 * (a later heartbeat, a redelivery, another replica's batch) is skipped by the unique constraint.
 *
 * `updated` says whether the host's running revisions changed since its previous report (the
 * original's "did this poll apply a change"); a host's first report is updated (it went from nothing
 * to what it runs).
 */

/** What a heartbeat says runs: app -> "incarnation:revision" ("-" for none yet). */
export function revisionsOf(h: Heartbeat): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of [...h.apps].sort((x, y) => (x.app < y.app ? -1 : x.app > y.app ? 1 : 0)))
    out[a.app] = a.incarnation === null || a.revision === null ? '-' : `${a.incarnation}:${a.revision}`;
  return out;
}

export function sameRevisions(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

export interface ReportRow {
  host: string;
  device_group: string | null;
  created_at: string;
  gathered_at: string;
  updated: boolean;
  revisions: Record<string, string>;
  usage: unknown;
}

/**
 * The reports of one host's heartbeats (oldest first), given the revisions of its previous report
 * (null: none). Pure: one row per distinct sample, each `updated` judged against the one before.
 */
export function reportRows(list: readonly Received<Heartbeat>[], previous: Record<string, string> | null): ReportRow[] {
  const rows: ReportRow[] = [];
  const seen = new Set<string>();
  let prev = previous;
  for (const { value: h, ns } of list) {
    if (h.usage === undefined || seen.has(h.usage.gathered_at)) continue;
    seen.add(h.usage.gathered_at);
    const revisions = revisionsOf(h);
    rows.push({
      host: h.host,
      device_group: h.device_group ?? null,
      created_at: isoMicros(ns),
      gathered_at: h.usage.gathered_at,
      updated: prev === null || !sameRevisions(prev, revisions),
      revisions,
      usage: h.usage,
    });
    prev = revisions;
  }
  return rows;
}

/** Writes the reports of a batch (hosts in id order, within the heartbeats' transaction); returns the rows inserted. */
export async function writeReports(trx: Transaction<Database>, byHost: ReadonlyMap<string, readonly Received<Heartbeat>[]>): Promise<number> {
  const hosts = [...byHost].filter(([, list]) => list.some((h) => h.value.usage !== undefined)).map(([host]) => host);
  if (hosts.length === 0) return 0;
  const previous = await trx
    .selectFrom('host_reports')
    .distinctOn('host')
    .select(['host', 'revisions'])
    .where('host', 'in', hosts)
    .orderBy('host')
    .orderBy('id', 'desc')
    .execute();
  const prevOf = new Map(previous.map((r) => [r.host, (typeof r.revisions === 'string' ? JSON.parse(r.revisions) : r.revisions) as Record<string, string>]));
  const rows = hosts.flatMap((host) => reportRows(byHost.get(host) ?? [], prevOf.get(host) ?? null));
  if (rows.length === 0) return 0;
  const res = await trx
    .insertInto('host_reports')
    .values(rows.map((r) => ({ ...r, revisions: JSON.stringify(r.revisions), usage: JSON.stringify(r.usage) })))
    .onConflict((oc) => oc.columns(['host', 'gathered_at']).doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n);
}
