import { type Kysely, sql } from 'kysely';

/**
 * Cron jobs (written by the API) and their runs (written, later, from the hosts' reports):
 *
 *   cron_jobs      one row per incarnation of a job: its name, `cron_job_id` (1, +1 per update,
 *                  and a re-created job starts above the deleted one's, so workers that act when it
 *                  grows never miss it), the config (jsonb), created/updated, deleted_at (soft: the
 *                  runs of a deleted job stay listed until retention takes them)
 *   cron_job_runs  one row per run of a job on a host: when it started and finished, its exit code,
 *                  whether it was stopped at its timeout, the last lines of its log
 *
 * A name is unique among live jobs only (a partial unique index), as apps' names are.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('cron_jobs')
    .addColumn('incarnation', 'bigserial', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('cron_job_id', 'integer', (c) => c.notNull().check(sql`cron_job_id > 0`))
    .addColumn('config', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deleted_at', 'timestamptz')
    .execute();
  await sql`CREATE UNIQUE INDEX cron_jobs_live_name ON cron_jobs (name) WHERE deleted_at IS NULL`.execute(db);
  await sql`CREATE INDEX cron_jobs_name ON cron_jobs (name, cron_job_id DESC)`.execute(db);
  await db.schema
    .createTable('cron_job_runs')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('incarnation', 'bigint', (c) => c.notNull().references('cron_jobs.incarnation').onDelete('cascade'))
    .addColumn('cron_job_id', 'integer', (c) => c.notNull())
    .addColumn('host_id', 'text', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz')
    .addColumn('exit_code', 'integer')
    .addColumn('timed_out', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('log_tail', 'text')
    .execute();
  // The runs route lists a job's newest runs first.
  await sql`CREATE INDEX cron_job_runs_job ON cron_job_runs (incarnation, started_at DESC, id DESC)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('cron_job_runs').execute();
  await db.schema.dropTable('cron_jobs').execute();
}
