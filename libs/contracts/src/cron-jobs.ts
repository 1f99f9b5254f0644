import { z } from 'zod';
import { deviceSchema, envVarsSchema, imageSchema, networksSchema, volumeSchema } from './app-config.ts';
import { CronScheduleError, isValidTimeZone, parseCronSchedule } from './cron-schedule.ts';
import { NAME_PATTERN } from './names.ts';

/**
 * A cron job, in the original Nebula's shape (`/api/v2/cron_jobs`): an image run at a schedule, one
 * container per run, by every host of the device groups that list it. The container fields reuse
 * the app config's schemas, so a volume or a network means the same in both.
 *
 * Defaults are the original's, except `networks`: its create stored `[]`, which crashed its worker
 * (`networks[0]`), while its POST update and its docs use `["nebula", "bridge"]`; we use that one
 * everywhere, as for apps. Ours: `timezone` (IANA, UTC by default: the original ran in UTC) and
 * `timeout_seconds` (a run still going after it is stopped).
 */
export const cronJobNameSchema = z.string().regex(NAME_PATTERN, 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ (letters, digits, "_" and "-")');

export const cronScheduleSchema = z.string().superRefine((text, ctx) => {
  try {
    parseCronSchedule(text);
  } catch (err) {
    if (!(err instanceof CronScheduleError)) throw err;
    ctx.addIssue({ code: 'custom', message: `invalid schedule: ${err.message}` });
  }
});

export const timeZoneSchema = z.string().refine(isValidTimeZone, 'not a known time zone: use an IANA name such as "UTC" or "Europe/Paris"');

/** A day: a run may take a while, but one that never ends holds its host's slot for the job forever. */
export const MAX_CRON_TIMEOUT_SECONDS = 86_400;

const fields = {
  docker_image: imageSchema,
  schedule: cronScheduleSchema,
  env_vars: envVarsSchema,
  running: z.boolean(),
  networks: networksSchema,
  volumes: z.array(volumeSchema).max(256),
  devices: z.array(deviceSchema).max(256),
  privileged: z.boolean(),
  timezone: timeZoneSchema,
  timeout_seconds: z.number().int().min(1).max(MAX_CRON_TIMEOUT_SECONDS, `at most ${MAX_CRON_TIMEOUT_SECONDS} (a day)`),
};

export const CRON_JOB_DEFAULTS = {
  env_vars: {} as Record<string, string>,
  running: true,
  networks: ['nebula', 'bridge'],
  volumes: [] as string[],
  devices: [] as string[],
  privileged: false,
  timezone: 'UTC',
  timeout_seconds: 3600,
} as const;

/** The fields `POST /cron_jobs/<c>` and `POST /cron_jobs/<c>/update` require (the original's list). */
export const CRON_JOB_REQUIRED = ['docker_image', 'schedule'] as const;

/** POST create and POST update: docker_image and schedule required, the rest defaulted. */
export const cronJobConfigSchema = z.strictObject({
  docker_image: fields.docker_image,
  schedule: fields.schedule,
  env_vars: fields.env_vars.default(() => ({})),
  running: fields.running.default(CRON_JOB_DEFAULTS.running),
  networks: fields.networks.default(() => [...CRON_JOB_DEFAULTS.networks]),
  volumes: fields.volumes.default(() => []),
  devices: fields.devices.default(() => []),
  privileged: fields.privileged.default(CRON_JOB_DEFAULTS.privileged),
  timezone: fields.timezone.default(CRON_JOB_DEFAULTS.timezone),
  timeout_seconds: fields.timeout_seconds.default(CRON_JOB_DEFAULTS.timeout_seconds),
});

/** PUT/PATCH update: any subset of the fields, merged into the current config. */
export const cronJobPatchSchema = z.strictObject(fields).partial();

export type CronJobConfigInput = z.input<typeof cronJobConfigSchema>;
/** A complete cron job config, as stored (and, later, as sent to workers). */
export type CronJobConfig = z.output<typeof cronJobConfigSchema>;
export type CronJobPatch = z.output<typeof cronJobPatchSchema>;

/** A cron job as the API answers it: the original's fields (cron_job_name, cron_job_id, the config), plus ours. */
export const cronJobDocSchema = cronJobConfigSchema.safeExtend({
  cron_job_name: z.string(),
  /** 1 on create, +1 on every update; never lower than an earlier job of the same name had (workers act when it grows). */
  cron_job_id: z.number().int().positive(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type CronJobDoc = z.output<typeof cronJobDocSchema>;

/**
 * One run of a job on one host (reported by the host; listed by `GET /cron_jobs/<c>/runs`, newest
 * first). `finished_at`, `exit_code` null: still running (or its host never reported the end).
 */
export const cronJobRunSchema = z.object({
  host_id: z.string(),
  /** The job's cron_job_id the run was started with. */
  cron_job_id: z.number().int().positive(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  /** Stopped because it ran past timeout_seconds. */
  timed_out: z.boolean(),
  /** The last lines of its log. */
  log_tail: z.string().nullable(),
  /** Why it did not run (image not pulled, refused by the host policy...) or could not be waited for; null: it ran. */
  error: z.string().nullable(),
});
export type CronJobRun = z.output<typeof cronJobRunSchema>;
