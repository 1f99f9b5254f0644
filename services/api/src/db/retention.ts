import type { Database } from '@nebula/db';
import type { Logger } from '@nebula/service-kit';
import { type Kysely, sql } from 'kysely';
import { pruneExpiredReports, type ReportPruneOptions } from './report-retention.ts';

/**
 * Retention: rows that only record the past are deleted once older than `retentionDays`, so the
 * tables (and every read over them) stay bounded on a fleet that runs for years.
 *
 *   outbox         published rows, by published_at (unpublished and dead-lettered rows stay)
 *   rollouts       published, by created_at; never the rollout of a live app's current revision
 *   rollout_hosts  with their rollout
 *   hosts          not seen since the cutoff (long offline; a host that comes back is recreated by
 *                  its next heartbeat)
 *   host_reports   older than their own, shorter cutoff (report-retention.ts)
 *   cron_job_runs  started before the cutoff
 *   cron_jobs      deleted before the cutoff (their remaining runs go with them)
 *   host_prunes    reported before the cutoff
 *
 * Apps and their revisions stay (history). Each run deletes at most `batchSize` rows per table, in
 * one transaction under a transaction-level advisory lock: one replica prunes at a time, the others
 * find the lock taken and skip that run.
 */
/** Distinct from the migration (727_001) and outbox relay (727_002) locks: it must not wait on, or block, those. */
export const RETENTION_LOCK_ID = 727_101;

export interface PruneOptions {
  retentionDays: number;
  /** Rows per table per run (rollouts: their results go along). */
  batchSize?: number;
}

export interface PruneCounts {
  outbox: number;
  rollouts: number;
  rollout_hosts: number;
  hosts: number;
  cron_job_runs: number;
  cron_jobs: number;
  host_prunes: number;
}

/**
 * Deletes one batch of expired rows; null when another replica holds the lock. The whole decision
 * of which rows go is this one statement.
 */
export async function pruneExpired(db: Kysely<Database>, opts: PruneOptions): Promise<PruneCounts | null> {
  const batch = opts.batchSize ?? 1000;
  return db.transaction().execute(async (trx) => {
    const lock = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(${RETENTION_LOCK_ID}) as ok`.execute(trx);
    if (!lock.rows[0]?.ok) return null;
    const r = await sql<PruneCounts>`
      with cutoff as (select now() - make_interval(days => ${opts.retentionDays}) as at),
      old_rollouts as (
        select r.id
          from rollouts r, cutoff
         where r.created_at < cutoff.at
           and r.published_at is not null
           and not exists (
             select 1 from apps a
              where a.deleted_at is null and a.incarnation = r.incarnation and a.revision = r.revision)
         order by r.created_at
         limit ${batch}
      ),
      gone_results as (delete from rollout_hosts h using old_rollouts o where h.rollout_id = o.id returning 1),
      gone_rollouts as (delete from rollouts r using old_rollouts o where r.id = o.id returning 1),
      gone_outbox as (
        delete from outbox where id in (
          select o.id from outbox o, cutoff where o.published_at is not null and o.published_at < cutoff.at order by o.published_at limit ${batch})
        returning 1
      ),
      gone_hosts as (
        -- last_seen again on the row deleted: a heartbeat written meanwhile keeps the host.
        delete from hosts where id in (
          select h.id from hosts h, cutoff where h.last_seen < cutoff.at order by h.last_seen limit ${batch})
          and last_seen < (select at from cutoff)
        returning 1
      ),
      gone_cron_runs as (
        delete from cron_job_runs where id in (
          select c.id from cron_job_runs c, cutoff where c.started_at < cutoff.at order by c.started_at limit ${batch})
        returning 1
      ),
      gone_cron_jobs as (
        -- Its runs go by the foreign key's cascade (counted with them only when older than the cutoff).
        delete from cron_jobs where incarnation in (
          select j.incarnation from cron_jobs j, cutoff where j.deleted_at < cutoff.at order by j.deleted_at limit ${batch})
        returning 1
      ),
      gone_prunes as (
        delete from host_prunes where (host, device_group, prune_id) in (
          select p.host, p.device_group, p.prune_id from host_prunes p, cutoff where p.reported_at < cutoff.at order by p.reported_at limit ${batch})
        returning 1
      )
      select (select count(*) from gone_outbox)::int as outbox,
             (select count(*) from gone_rollouts)::int as rollouts,
             (select count(*) from gone_results)::int as rollout_hosts,
             (select count(*) from gone_hosts)::int as hosts,
             (select count(*) from gone_cron_runs)::int as cron_job_runs,
             (select count(*) from gone_cron_jobs)::int as cron_jobs,
             (select count(*) from gone_prunes)::int as host_prunes`.execute(trx);
    const [counts] = r.rows;
    if (!counts) throw new Error('retention: the delete query returned no row of counts');
    return counts;
  });
}

export interface RetentionOptions extends PruneOptions, Partial<ReportPruneOptions> {
  /** Between runs (default 1 h); the first run is one interval after start, at most a minute. */
  intervalMs?: number;
  /** Batches per run at most, when there is a backlog (default 20). */
  maxBatchesPerRun?: number;
}

/** Runs `pruneExpired` on a timer; failures (the database down) are logged and retried next time. */
export class RetentionJob {
  readonly #db: Kysely<Database>;
  readonly #log: Logger;
  readonly #opts: Required<RetentionOptions>;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  /** Rows deleted since start, per table. */
  readonly pruned: PruneCounts & { host_reports: number } = {
    outbox: 0,
    rollouts: 0,
    rollout_hosts: 0,
    hosts: 0,
    cron_job_runs: 0,
    cron_jobs: 0,
    host_prunes: 0,
    host_reports: 0,
  };

  constructor(db: Kysely<Database>, log: Logger, opts: RetentionOptions) {
    this.#db = db;
    this.#log = log;
    this.#opts = { batchSize: 1000, intervalMs: 3_600_000, maxBatchesPerRun: 20, reportRetentionDays: 7, reportBatchSize: 10_000, ...opts };
  }

  start(): void {
    this.#schedule(Math.min(this.#opts.intervalMs, 60_000));
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.runOnce().finally(() => {
        this.#running = null;
        this.#schedule(this.#opts.intervalMs);
      });
    }, ms);
    this.#timer.unref();
  }

  /** One run: batches until one is not full (or the cap); another replica pruning ends it. Then the reports, alike. */
  async runOnce(): Promise<void> {
    await this.#pruneRows();
    await this.#pruneReports();
  }

  async #pruneReports(): Promise<void> {
    try {
      for (let i = 0; i < this.#opts.maxBatchesPerRun && !this.#stopped; i++) {
        const n = await pruneExpiredReports(this.#db, this.#opts);
        if (n === null) return;
        this.pruned.host_reports += n;
        if (n > 0) this.#log.info({ pruned: { host_reports: n }, reportRetentionDays: this.#opts.reportRetentionDays }, 'pruned expired reports');
        if (n < this.#opts.reportBatchSize) return;
      }
    } catch (err) {
      this.#log.warn({ err }, 'pruning expired reports failed; retrying at the next interval');
    }
  }

  async #pruneRows(): Promise<void> {
    try {
      for (let i = 0; i < this.#opts.maxBatchesPerRun && !this.#stopped; i++) {
        const counts = await pruneExpired(this.#db, this.#opts);
        if (counts === null) return;
        for (const k of Object.keys(counts) as Array<keyof PruneCounts>) this.pruned[k] += counts[k];
        const total = Object.values(counts).reduce((a, n) => a + n, 0);
        if (total > 0) this.#log.info({ pruned: counts, retentionDays: this.#opts.retentionDays }, 'pruned expired rows');
        const full = Math.max(counts.outbox, counts.rollouts, counts.hosts, counts.cron_job_runs, counts.cron_jobs, counts.host_prunes) >= this.#opts.batchSize;
        if (!full) return;
      }
    } catch (err) {
      this.#log.warn({ err }, 'pruning expired rows failed; retrying at the next interval');
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }
}
