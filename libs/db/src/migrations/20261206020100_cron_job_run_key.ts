import { type Kysely, sql } from 'kysely';

/**
 * Runs of cron jobs as the hosts report them (the notifier writes them from CronRunReports):
 *
 *   cron_job_runs  unique (incarnation, host_id, started_at): one run of a job on a host starts at
 *                  one time (the worker never overlaps runs of a job), so a redelivered or repeated
 *                  report is the same row, written once. `container` (`<job>-<unix seconds>`) and
 *                  `error` (why it did not run, or could not be waited for) come with the report.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('cron_job_runs').addColumn('container', 'text').addColumn('error', 'text').execute();
  await sql`CREATE UNIQUE INDEX cron_job_runs_run ON cron_job_runs (incarnation, host_id, started_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX cron_job_runs_run`.execute(db);
  await db.schema.alterTable('cron_job_runs').dropColumn('error').dropColumn('container').execute();
}
