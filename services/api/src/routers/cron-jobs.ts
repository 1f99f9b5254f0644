import {
  type CronJobConfig,
  type CronJobDoc,
  cronJobConfigSchema,
  cronJobDocSchema,
  cronJobNameSchema,
  cronJobPatchSchema,
  cronJobRunSchema,
  envVarsSchema,
} from '@nebula/contracts';
import { z } from 'zod';
import { requireAccess, requireAdmin, requirePrivilegeFor, visibleConfig } from '../access/guard.ts';
import type { Identity } from '../auth.ts';
import { changeCronJob, createCronJob, deleteCronJob, findLiveCronJob, listCronJobRuns, listLiveCronJobNames } from '../db/cron-jobs.ts';
import { CronJobNotFoundError } from '../errors.ts';
import { authedProcedure, router } from '../trpc.ts';
import { changeOptions } from './app-inputs.ts';

/**
 * Cron jobs: the original's routes under /api/v2 (http/v2-cron-jobs.ts gives their codes and
 * bodies), plus the runs hosts report. Who may do what, as in the original except where noted:
 *
 *   list                  any login
 *   get, runs             "ro" on the job ("rw" includes it; the original's exact match did not)
 *   create, update        "rw"; a config that ends up privileged also needs privileged_allowed
 *   delete                admin; refused (409) while a device group names the job
 *
 * A caller without the right is refused before the job is looked up, so a 403 `access_allowed`
 * does not say whether the job exists.
 */
const nameInput = z.strictObject({ name: cronJobNameSchema });

/** The newest runs listed by default, and at most. */
export const RUNS_DEFAULT_LIMIT = 100;
export const RUNS_MAX_LIMIT = 1000;

const FORBIDDEN_MISSING = { 403: 'the cron job does not exist: {"cron_job_exists": false}' };
const BAD_CONFIG = {
  400: 'invalid config: {"missing_parameters": ["docker_image", "schedule"]} or {"schedule_valid": false}, with "errors": {field: [...]}',
};

function visible(identity: Identity, doc: CronJobDoc): CronJobDoc {
  return visibleConfig(identity, doc.cron_job_name, doc, 'cron_jobs');
}

function configOf(doc: CronJobDoc): CronJobConfig {
  const { cron_job_name: _n, cron_job_id: _i, created_at: _c, updated_at: _u, ...config } = doc;
  return config;
}

export const cronJobsRouter = router({
  list: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/cron_jobs', tags: ['cron_jobs'], summary: 'Names of all cron jobs' } })
    .input(z.void())
    .output(z.object({ cron_jobs: z.array(z.string()) }))
    .query(async ({ ctx }) => ({ cron_jobs: await listLiveCronJobNames(ctx.db) })),

  get: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/cron_jobs/{name}',
        tags: ['cron_jobs'],
        summary: 'One cron job (env values only for "rw")',
        errorResponses: FORBIDDEN_MISSING,
      },
    })
    .input(nameInput)
    .output(cronJobDocSchema)
    .query(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'cron_jobs', input.name, 'ro');
      const doc = await findLiveCronJob(ctx.db, input.name);
      if (!doc) throw new CronJobNotFoundError(input.name);
      return visible(ctx.identity, doc);
    }),

  create: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/cron_jobs/{name}',
        tags: ['cron_jobs'],
        summary: 'Create a cron job (docker_image and schedule required; cron_job_id 1, or above a deleted job of that name)',
        errorResponses: { ...BAD_CONFIG, 403: 'exists already: {"cron_job_exists": true}' },
      },
    })
    .input(cronJobConfigSchema.safeExtend({ name: cronJobNameSchema }))
    .output(cronJobDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...config } = input;
      requireAccess(ctx.identity, 'cron_jobs', name, 'rw');
      requirePrivilegeFor(ctx.identity, name, config, 'cron_jobs');
      return createCronJob(ctx.db, name, config);
    }),

  update: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/cron_jobs/{name}/update',
        tags: ['cron_jobs'],
        summary: 'Replace the whole config (docker_image and schedule required, the rest defaulted); cron_job_id + 1',
        errorResponses: { ...BAD_CONFIG, ...FORBIDDEN_MISSING },
      },
      successStatus: 202,
    })
    // The original's POST update stored `[]` for missing env_vars, as for apps.
    .input(cronJobConfigSchema.safeExtend({ name: cronJobNameSchema, env_vars: envVarsSchema.default(() => []) }))
    .output(cronJobDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...config } = input;
      requireAccess(ctx.identity, 'cron_jobs', name, 'rw');
      requirePrivilegeFor(ctx.identity, name, config, 'cron_jobs');
      return changeCronJob(ctx.db, name, () => config, changeOptions(ctx));
    }),

  patch: authedProcedure
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/api/v2/cron_jobs/{name}/update',
        tags: ['cron_jobs'],
        summary: 'Set the given fields (merged into the config; PUT does the same); cron_job_id + 1',
        errorResponses: { ...BAD_CONFIG, ...FORBIDDEN_MISSING },
      },
      successStatus: 202,
    })
    .input(cronJobPatchSchema.safeExtend({ name: cronJobNameSchema }).refine((v) => Object.keys(v).length > 1, 'nothing to update: give at least one field'))
    .output(cronJobDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...patch } = input;
      requireAccess(ctx.identity, 'cron_jobs', name, 'rw');
      // Each field is checked alone and none depends on another, so the merge is a valid config;
      // whether it is privileged is a matter of the result (a deployer cannot re-image a privileged job).
      return changeCronJob(
        ctx.db,
        name,
        (current) => {
          const next: CronJobConfig = { ...configOf(current), ...patch };
          requirePrivilegeFor(ctx.identity, name, next, 'cron_jobs');
          return next;
        },
        changeOptions(ctx),
      );
    }),

  delete: authedProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/api/v2/cron_jobs/{name}',
        tags: ['cron_jobs'],
        summary: 'Delete a cron job (admins only, as in the original); its runs stay listed until retention',
        errorResponses: {
          ...FORBIDDEN_MISSING,
          409: 'device groups name it: {"error": "cron job X is in device groups g1, g2: remove it from them first", "device_groups": [...]}',
        },
      },
    })
    .input(nameInput)
    .output(z.object({}))
    .mutation(async ({ ctx, input }) => {
      requireAdmin(ctx.identity);
      await deleteCronJob(ctx.db, input.name);
      return {};
    }),

  runs: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/cron_jobs/{name}/runs',
        tags: ['cron_jobs'],
        summary: `The job's runs on every host, newest first: {"cron_job_name", "runs": [{host_id, cron_job_id, started_at, finished_at, exit_code, timed_out, log_tail, error}]} (limit: default ${RUNS_DEFAULT_LIMIT}, at most ${RUNS_MAX_LIMIT})`,
        errorResponses: FORBIDDEN_MISSING,
      },
    })
    .input(nameInput.extend({ limit: z.number().int().min(1).max(RUNS_MAX_LIMIT).default(RUNS_DEFAULT_LIMIT) }))
    .output(z.object({ cron_job_name: z.string(), runs: z.array(cronJobRunSchema) }))
    .query(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'cron_jobs', input.name, 'ro');
      return { cron_job_name: input.name, runs: await listCronJobRuns(ctx.db, input.name, input.limit) };
    }),
});
