import { type CronJobConfig, type CronJobDoc, type CronJobRun, cronJobConfigSchema } from '@nebula/contracts';
import { type Database, type Kysely, sql } from '@nebula/db';
import { CronJobExistsError, CronJobNotFoundError, InDeviceGroupsError } from '../errors.ts';
import { groupsAfterCronJobChange } from './device-group-changes.ts';
import { groupsNaming, lockGroupMembership } from './device-groups.ts';
import type { GroupChangeOptions } from './group-messages.ts';

/**
 * Cron jobs in PostgreSQL. A job is one live row of `cron_jobs` (deleted ones keep their row, with
 * `deleted_at`, so their runs stay listed until retention). `cron_job_id` is the change counter
 * workers compare: +1 per update, and a job made again under a deleted one's name starts above the
 * highest id that name ever had, so a worker that still remembers the old job sees the new one as newer.
 */
type Db = Kysely<Database>;

interface Row {
  name: string;
  cron_job_id: number;
  config: unknown;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = ['name', 'cron_job_id', 'config', 'created_at', 'updated_at'] as const;

/** Stored configs were valid when written; parsing again fills a field a later version added with its default. */
function toDoc(r: Row): CronJobDoc {
  return {
    cron_job_name: r.name,
    cron_job_id: r.cron_job_id,
    ...cronJobConfigSchema.parse(r.config),
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

export async function listLiveCronJobNames(db: Db): Promise<string[]> {
  const rows = await db.selectFrom('cron_jobs').select('name').where('deleted_at', 'is', null).orderBy('name').execute();
  return rows.map((r) => r.name);
}

export async function findLiveCronJob(db: Db, name: string): Promise<CronJobDoc | null> {
  const r = await db.selectFrom('cron_jobs').select(COLUMNS).where('name', '=', name).where('deleted_at', 'is', null).executeTakeFirst();
  return r ? toDoc(r) : null;
}

/** A new job; CronJobExistsError when a live one has the name (also when two creates race: the unique index decides). */
export async function createCronJob(db: Db, name: string, config: CronJobConfig): Promise<CronJobDoc> {
  try {
    const r = await db
      .insertInto('cron_jobs')
      .values({
        name,
        cron_job_id: sql<number>`(SELECT coalesce(max(cron_job_id), 0) + 1 FROM cron_jobs WHERE name = ${name})`,
        config: JSON.stringify(config),
        updated_at: new Date(),
      })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    return toDoc(r);
  } catch (err) {
    if (isUniqueViolation(err)) throw new CronJobExistsError(name, { cause: err });
    throw err;
  }
}

/**
 * Replaces the live job's config with `next(current)` and adds 1 to its cron_job_id, in one
 * transaction (the row is locked, so two updates never give the same id). `next` may throw (a
 * refused privilege): nothing is written then. Every live device group that names the job gets a
 * new message with the new config in the same transaction (device-group-changes.ts), under the
 * membership lock taken first (see lockGroupMembership for why).
 */
export async function changeCronJob(db: Db, name: string, next: (current: CronJobDoc) => CronJobConfig, opts: GroupChangeOptions): Promise<CronJobDoc> {
  return db.transaction().execute(async (trx) => {
    await lockGroupMembership(trx);
    const r = await trx.selectFrom('cron_jobs').select(COLUMNS).where('name', '=', name).where('deleted_at', 'is', null).forUpdate().executeTakeFirst();
    if (!r) throw new CronJobNotFoundError(name);
    const config = next(toDoc(r));
    const u = await trx
      .updateTable('cron_jobs')
      .set({ config: JSON.stringify(config), cron_job_id: r.cron_job_id + 1, updated_at: new Date() })
      .where('name', '=', name)
      .where('deleted_at', 'is', null)
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    await groupsAfterCronJobChange(trx, name, opts);
    return toDoc(u);
  });
}

/** Refused (InDeviceGroupsError, nothing changed) while a live device group names the job. */
export async function deleteCronJob(db: Db, name: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await lockGroupMembership(trx);
    const r = await trx.selectFrom('cron_jobs').select('incarnation').where('name', '=', name).where('deleted_at', 'is', null).forUpdate().executeTakeFirst();
    if (!r) throw new CronJobNotFoundError(name);
    const groups = await groupsNaming(trx, 'cron_jobs', name);
    if (groups.length > 0) throw new InDeviceGroupsError('cron job', name, groups);
    await trx.updateTable('cron_jobs').set({ deleted_at: new Date() }).where('incarnation', '=', r.incarnation).execute();
  });
}

/** The newest `limit` runs of the live job, newest first; CronJobNotFoundError when there is no live job. */
export async function listCronJobRuns(db: Db, name: string, limit: number): Promise<CronJobRun[]> {
  const job = await db.selectFrom('cron_jobs').select('incarnation').where('name', '=', name).where('deleted_at', 'is', null).executeTakeFirst();
  if (!job) throw new CronJobNotFoundError(name);
  const rows = await db
    .selectFrom('cron_job_runs')
    .select(['host_id', 'cron_job_id', 'started_at', 'finished_at', 'exit_code', 'timed_out', 'log_tail', 'error'])
    .where('incarnation', '=', job.incarnation)
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    host_id: r.host_id,
    cron_job_id: r.cron_job_id,
    started_at: r.started_at.toISOString(),
    finished_at: r.finished_at?.toISOString() ?? null,
    exit_code: r.exit_code,
    timed_out: r.timed_out,
    log_tail: r.log_tail,
    error: r.error,
  }));
}
