import type { Database } from '@nebula/db';
import { type Kysely, sql } from 'kysely';
import { RETENTION_LOCK_ID } from './retention.ts';

/**
 * Host reports are kept for `REPORT_RETENTION_DAYS` (default 7, the original kept them an hour), far
 * shorter than the other history, and they are the largest table (one row per host per report
 * interval: 1000 hosts at 60 s are 60 000 rows an hour). So they have their own cutoff and a larger
 * batch, deleted oldest first under the same advisory lock as the other pruning (one replica at a
 * time; the others skip the run).
 */
export interface ReportPruneOptions {
  reportRetentionDays: number;
  /** Reports per batch (default 10 000). */
  reportBatchSize?: number;
}

/** Deletes one batch of expired reports; null when another replica holds the lock. */
export async function pruneExpiredReports(db: Kysely<Database>, opts: ReportPruneOptions): Promise<number | null> {
  const batch = opts.reportBatchSize ?? 10_000;
  return db.transaction().execute(async (trx) => {
    const lock = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(${RETENTION_LOCK_ID}) as ok`.execute(trx);
    if (!lock.rows[0]?.ok) return null;
    const r = await sql<{ n: number }>`
      with gone as (
        delete from host_reports where id in (
          select id from host_reports
           where created_at < now() - make_interval(days => ${opts.reportRetentionDays})
           order by created_at
           limit ${batch})
        returning 1
      )
      select count(*)::int as n from gone`.execute(trx);
    return r.rows[0]?.n ?? 0;
  });
}
