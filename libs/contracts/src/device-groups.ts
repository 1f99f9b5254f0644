import { z } from 'zod';
import { cronJobConfigSchema, cronJobNameSchema } from './cron-jobs.ts';
import { MESSAGE_VERSION, subjects } from './messages.ts';
import { appNameSchema, hostIdSchema, NAME_PATTERN } from './names.ts';

/**
 * Device groups, in the original Nebula's shape (`/api/v2/device_groups`): a named set of apps and
 * cron jobs that every host following the group (`DEVICE_GROUP=g`) serves and runs. The group lives
 * in PostgreSQL; its whole current state travels to the hosts as one signed message on
 * `groups.<g>` (stream GROUPS, newest kept per subject), the way an app's revision does on
 * `apps.<app>`:
 *
 *   API: create / update / prune / a listed cron job changed / delete
 *     ──▶ outbox row `groups.<g>` (a GroupMessage: apps by name, cron jobs in full, prune_id)
 *     ──▶ relay signs and publishes ──▶ each host's durable consumer on GROUPS
 *     ──▶ worker: apps added get runners (after a renewal grants their consumers and rights),
 *         apps removed lose theirs and their containers; cron jobs rescheduled; prune_id grown:
 *         unused images removed
 *     ──▶ the host reports on `events.<host>.group.<g>` (a GroupResult) ──▶ the group change's
 *         rollout, host by host, as for an app change
 */
export const deviceGroupNameSchema = z
  .string()
  .regex(NAME_PATTERN, 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ (letters, digits, "_" and "-"; no dots, spaces, slashes or wildcards)');

/** At most this many apps or cron jobs per group (a group message names them all). */
export const MAX_GROUP_MEMBERS = 1_000;

const groupLists = {
  apps: z.array(appNameSchema).max(MAX_GROUP_MEMBERS),
  cron_jobs: z.array(cronJobNameSchema).max(MAX_GROUP_MEMBERS),
};

/** What a group is made of (POST create and POST update: both lists, missing ones empty). */
export const deviceGroupConfigSchema = z.strictObject({
  apps: groupLists.apps.default(() => []),
  cron_jobs: groupLists.cron_jobs.default(() => []),
});
export type DeviceGroupConfig = z.output<typeof deviceGroupConfigSchema>;

/**
 * PUT/PATCH update: either list, the other kept. Built from the lists without their defaults: under
 * zod 4 `.partial()` of the config would keep each default, and a PATCH of one list empty the other.
 */
export const deviceGroupPatchSchema = z.strictObject(groupLists).partial();

/** A cron job as a group message carries it: its whole config, so a host needs nothing else. */
export const groupCronJobSchema = z.object({
  name: cronJobNameSchema,
  /** The job's `cron_job_id` (grows with every update): a host reschedules when it changes. */
  cron_job_id: z.number().int().positive(),
  config: cronJobConfigSchema,
});
export type GroupCronJob = z.infer<typeof groupCronJobSchema>;

export const groupMessageSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  device_group: deviceGroupNameSchema,
  /** Id of this incarnation of the group (a deleted and re-created group is a new one); never reused. */
  incarnation: z.number().int().positive(),
  /** Grows with every message of this incarnation (a change, a prune, a listed cron job updated): hosts order by it. */
  seq: z.number().int().positive(),
  /** The original's `device_group_id`: 1 at create, +1 per change of the lists. */
  device_group_id: z.number().int().positive(),
  /** The original's `prune_id`: 1 at create, +1 per prune. A host prunes when it grows while it runs. */
  prune_id: z.number().int().positive(),
  /** True for the message a delete writes: the hosts drop the group's apps and jobs, and wait for it again. */
  deleted: z.boolean(),
  apps: z.array(appNameSchema).max(MAX_GROUP_MEMBERS),
  cron_jobs: z.array(groupCronJobSchema).max(MAX_GROUP_MEMBERS),
  /** The rollout that tracks this change host by host (a prune or a cron-only change has one too). */
  rollout_id: z.string().min(1),
  created_at: z.iso.datetime(),
  actor: z.string().optional(),
});
export type GroupMessage = z.infer<typeof groupMessageSchema>;

/** True when group message `a` comes after `b` (same group). */
export function isLaterGroupMessage(a: Pick<GroupMessage, 'incarnation' | 'seq'>, b: Pick<GroupMessage, 'incarnation' | 'seq'>): boolean {
  return a.incarnation > b.incarnation || (a.incarnation === b.incarnation && a.seq > b.seq);
}

/** JetStream message id of a group message: publishing it twice stores it once. */
export function groupMessageId(m: Pick<GroupMessage, 'rollout_id'>): string {
  return m.rollout_id;
}

/**
 * What a host reports once it has converged to a group message (every app of the group applied or
 * failed, cron jobs scheduled). `failed` names the apps that failed and why in `error`.
 */
export const groupResultSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  device_group: deviceGroupNameSchema,
  host: hostIdSchema,
  incarnation: z.number().int().positive(),
  seq: z.number().int().positive(),
  device_group_id: z.number().int().positive(),
  rollout_id: z.string().min(1),
  status: z.enum(['applied', 'failed', 'superseded']),
  error: z.string().max(8192).nullable(),
  /** The group's apps as this host serves them now. */
  apps: z.array(z.object({ app: appNameSchema, status: z.enum(['applied', 'failed']), error: z.string().max(4096).nullable() })).max(MAX_GROUP_MEMBERS),
  at: z.iso.datetime(),
});
export type GroupResult = z.infer<typeof groupResultSchema>;

/** The last lines of a run's log a report carries, at most. */
export const CRON_LOG_TAIL_MAX = 8 * 1024;

/** One run of a cron job on one host, reported when it ends (or when it could not start). */
export const cronRunReportSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  job: cronJobNameSchema,
  cron_job_id: z.number().int().positive(),
  host: hostIdSchema,
  device_group: deviceGroupNameSchema,
  /** `<job>-<unix time>` (the run's container). */
  container: z.string().min(1).max(128),
  started_at: z.iso.datetime(),
  finished_at: z.iso.datetime().nullable(),
  /** Null when it never ran (the image could not be pulled, the host policy refused it...). */
  exit_code: z.number().int().nullable(),
  /** Stopped at the job's `timeout_seconds`. */
  timed_out: z.boolean(),
  log_tail: z.string().max(CRON_LOG_TAIL_MAX),
  /** Why it did not run or could not be waited for; null for a run that ran (whatever its exit code). */
  error: z.string().max(4096).nullable(),
  at: z.iso.datetime(),
});
export type CronRunReport = z.infer<typeof cronRunReportSchema>;

/** What a host freed for one prune of its group. */
export const pruneReportSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  host: hostIdSchema,
  device_group: deviceGroupNameSchema,
  prune_id: z.number().int().positive(),
  /** Sum of the sizes of the images removed, as the engine reported them. */
  bytes_freed: z.number().int().min(0),
  images_removed: z.array(z.string().max(512)).max(10_000),
  error: z.string().max(4096).nullable(),
  at: z.iso.datetime(),
});
export type PruneReport = z.infer<typeof pruneReportSchema>;

/**
 * Subjects of group messages and of what hosts report about groups. Host events live under
 * `events.<host>.` so one permission (`events.<host>.>`) lets a host speak of itself only; the
 * notifier checks the signature (the host's key) and the host named inside, as for results.
 */
export const groupSubjects = {
  group: (g: string) => `groups.${g}`,
  allGroups: subjects.allGroups,
  groupResult: (host: string, g: string) => `events.${host}.group.${g}`,
  cronRun: (host: string, job: string) => `events.${host}.cron.${job}`,
  prune: (host: string, g: string) => `events.${host}.prune.${g}`,
  hostEvents: (host: string) => `events.${host}.>`,
  /** The streams GROUPS and EVENTS (in `streams`, messages.ts) hold these. */
  allEvents: subjects.allEvents,
} as const;
