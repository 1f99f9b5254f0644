import type { CronJob, CronJobRuns } from '@nebula/client';
import { positiveInt } from '../command-line.ts';
import { CRON_JOB_CONFIG, readConfigFile } from '../config-file.ts';
import { arg, type Command, type Ctx, print, printJson } from '../context.ts';
import { EXIT } from '../errors.ts';
import { ago, keyValues, table } from '../format.ts';
import { mapLimited } from '../map-limited.ts';

/**
 * `nebula cron ...`: list, get, create, update, delete, runs. A config comes from -f <file> (JSON or
 * YAML, - for stdin) as for apps, with --schedule and --image on top (they win over the file's).
 * `update` merges into the job's config; with --replace the body becomes the whole config (image
 * and schedule needed, the rest defaulted). The API checks every field (a bad schedule: its 400
 * `{"schedule_valid": false}`).
 */
export function cronBody(file: Record<string, unknown>, flags: { schedule?: string; image?: string }): Record<string, unknown> {
  return {
    ...file,
    ...(flags.schedule === undefined ? {} : { schedule: flags.schedule }),
    ...(flags.image === undefined ? {} : { docker_image: flags.image }),
  };
}

function body(ctx: Ctx, job: string): Record<string, unknown> {
  const file = ctx.values.file === undefined ? {} : readConfigFile(ctx.values.file, job, ctx.io.readStdin, CRON_JOB_CONFIG);
  return cronBody(file, { schedule: ctx.values.schedule, image: ctx.values.image });
}

function jobView(j: CronJob): string {
  return keyValues([
    ['cron job', j.cron_job_name],
    ['cron_job_id', j.cron_job_id],
    ['schedule', `${j.schedule} (${j.timezone})`],
    ['image', j.docker_image],
    ['running', j.running],
    ['timeout', `${j.timeout_seconds}s`],
    ['env', Array.isArray(j.env_vars) ? {} : j.env_vars],
    ['networks', j.networks.join(', ')],
    ['volumes', j.volumes.join(', ')],
    ['devices', j.devices.join(', ')],
    ['privileged', j.privileged],
    ['updated', `${j.updated_at} (${ago(j.updated_at)})`],
  ]);
}

function done(ctx: Ctx, j: CronJob, what: string): number {
  if (ctx.json) printJson(ctx, j);
  else print(ctx, `cron job ${j.cron_job_name} ${what} (cron_job_id ${j.cron_job_id}, schedule "${j.schedule}" ${j.timezone})`);
  return EXIT.ok;
}

function runRows(r: CronJobRuns): Array<Array<string | number | null>> {
  return r.runs.map((run) => [
    run.host_id,
    run.started_at,
    run.finished_at ?? 'running',
    run.finished_at === null ? '' : `${Math.round((Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000)}s`,
    run.exit_code ?? '-',
    run.timed_out ? 'yes' : 'no',
    // A run that never started says why; one that ran, its last line (the whole tail: --json).
    run.error !== null ? `error: ${run.error}` : run.log_tail === null ? '' : (run.log_tail.trimEnd().split('\n').at(-1) ?? ''),
  ]);
}

export const cronCommands: Record<string, Command> = {
  async 'cron list'(ctx) {
    const { cron_jobs } = await ctx.nebula.cronJobs.list.query();
    if (ctx.json) {
      printJson(ctx, { cron_jobs });
      return EXIT.ok;
    }
    // One read per job (a few at a time): one deleted meanwhile, or not readable by this user, shows only its name.
    const rows = await mapLimited(cron_jobs.sort(), 8, async (name) => {
      const j = await ctx.nebula.cronJobs.get.query({ name }).catch(() => null);
      return j ? [name, `${j.schedule} (${j.timezone})`, j.docker_image, j.running ? 'yes' : 'no', j.cron_job_id] : [name, null, null, null, null];
    });
    print(ctx, rows.length === 0 ? 'no cron jobs' : table(['CRON JOB', 'SCHEDULE', 'IMAGE', 'RUNNING', 'ID'], rows));
    return EXIT.ok;
  },

  async 'cron get'(ctx) {
    const j = await ctx.nebula.cronJobs.get.query({ name: arg(ctx, 'job') });
    if (ctx.json) printJson(ctx, j);
    else print(ctx, jobView(j));
    return EXIT.ok;
  },

  async 'cron create'(ctx) {
    const name = arg(ctx, 'job');
    const config = body(ctx, name) as { docker_image: string; schedule: string };
    return done(ctx, await ctx.nebula.cronJobs.create.mutate({ ...config, name }), 'created');
  },

  async 'cron update'(ctx) {
    const name = arg(ctx, 'job');
    const config = body(ctx, name);
    const j = ctx.values.replace
      ? await ctx.nebula.cronJobs.update.mutate({ ...(config as { docker_image: string; schedule: string }), name })
      : await ctx.nebula.cronJobs.patch.mutate({ ...config, name });
    return done(ctx, j, ctx.values.replace ? 'replaced' : 'updated');
  },

  async 'cron delete'(ctx) {
    const name = arg(ctx, 'job');
    await ctx.nebula.cronJobs.delete.mutate({ name });
    if (ctx.json) printJson(ctx, {});
    else print(ctx, `cron job ${name} deleted`);
    return EXIT.ok;
  },

  async 'cron runs'(ctx) {
    const limit = positiveInt(ctx.values.limit, '--limit', 1000);
    const r = await ctx.nebula.cronJobs.runs.query({ name: arg(ctx, 'job'), ...(limit ? { limit } : {}) });
    if (ctx.json) printJson(ctx, r);
    else
      print(
        ctx,
        r.runs.length === 0
          ? `no runs of ${r.cron_job_name} yet`
          : table(['HOST', 'STARTED', 'FINISHED', 'TOOK', 'EXIT', 'TIMED OUT', 'LAST LOG LINE'], runRows(r)),
      );
    return EXIT.ok;
  },
};
