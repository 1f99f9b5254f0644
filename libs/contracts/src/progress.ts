import { z } from 'zod';
import { APP_ACTIONS, containerStateSchema, RESULT_STATUSES } from './messages.ts';
import { appNameSchema, hostIdSchema } from './names.ts';
import { rolloutRegionsSchema } from './rollout-regions.ts';
import { hostUsageSchema } from './usage.ts';

/**
 * What the notifier's data tells readers (the API, the CLI): rollout progress and hosts. These are
 * the shapes the data layer's queries return (timestamps as ISO strings, so they travel as JSON
 * unchanged) and the API's output schemas.
 */

/** A host's state within one rollout: its reported result, or `pending`/`offline` while it has none. */
export const ROLLOUT_HOST_STATES = [...RESULT_STATUSES, 'pending', 'offline'] as const;
export const rolloutHostStateSchema = z.enum(ROLLOUT_HOST_STATES);
export type RolloutHostState = z.infer<typeof rolloutHostStateSchema>;

const isoTime = z.iso.datetime({ offset: true });

/**
 * Where a rollout is. One in waves (its app has a `rollout_strategy`) has its state kept by the
 * rollout controller; one all at once is `rolling` until complete, then `succeeded` or `failed`.
 *
 *   rolling ⇄ paused            (pause/resume; a failure with on_failure "pause"; auto_promote false)
 *   rolling|paused ──▶ succeeded | failed (the budget exceeded, no rollback) | aborted (by a person,
 *                      or superseded by a newer change) | rolled_back (a rollback revision was made)
 */
export const ROLLOUT_STATES = ['rolling', 'paused', 'succeeded', 'failed', 'aborted', 'rolled_back'] as const;
export const rolloutStateSchema = z.enum(ROLLOUT_STATES);
export type RolloutState = z.infer<typeof rolloutStateSchema>;

/** One wave of a rollout: its cumulative percent, its own hosts (not the earlier waves') and how they did. */
export const rolloutWaveSchema = z.object({
  percent: z.number(),
  /** Hosts in this wave (members placed in it; not counting earlier waves). */
  hosts: z.number().int().min(0),
  applied: z.number().int().min(0),
  failed: z.number().int().min(0),
  started_at: isoTime.nullable(),
  finished_at: isoTime.nullable(),
});
export type RolloutWave = z.infer<typeof rolloutWaveSchema>;

/** What a device group's change did (its rollout's `action`): the app actions' create, update, delete, and its own. */
export const GROUP_ACTIONS = ['create', 'update', 'prune', 'delete', 'cron_job'] as const;
export type GroupAction = (typeof GROUP_ACTIONS)[number];
/** A rollout's action: an app's, or a device group's change. */
export const rolloutActionSchema = z.enum([...APP_ACTIONS, 'prune', 'cron_job']);
export type RolloutAction = z.infer<typeof rolloutActionSchema>;
export const ROLLOUT_KINDS = ['app', 'group'] as const;

export const rolloutSummarySchema = z.object({
  id: z.string(),
  /**
   * `app`: a revision of the app named `app`; `group`: a change of the device group named `app`
   * (`revision` is then the group's message seq, `incarnation` the group's).
   */
  kind: z.enum(ROLLOUT_KINDS).default('app'),
  app: appNameSchema,
  incarnation: z.number().int().positive(),
  revision: z.number().int().positive(),
  action: rolloutActionSchema,
  created_at: isoTime,
  published_at: isoTime.nullable(),
  /**
   * Why its message could never be published (e.g. larger than the server's max_payload, no
   * permission on the subject); null while it is published or still waiting to be. Hosts never see
   * such a rollout: it counts as complete.
   */
  publish_error: z.string().nullable(),
  /** Hosts serving the app (and online) when the rollout was created. */
  expected: z.number().int().min(0),
  /** Hosts with a result, expected or not. */
  reported: z.number().int().min(0),
  applied: z.number().int().min(0),
  failed: z.number().int().min(0),
  superseded: z.number().int().min(0),
  /** Expected hosts without a result that are online: still to come. */
  pending: z.number().int().min(0),
  /** Expected hosts without a result that are offline now: not waited for. */
  offline: z.number().int().min(0),
  /** Hosts that reported without being expected (joined or came back after the rollout was created). */
  joined: z.number().int().min(0),
  /** Every expected host that is online has reported (pending is 0), or it could not be published: nothing more to wait for. */
  complete: z.boolean(),
  /**
   * Every expected host applied it (no expected host failed, was superseded or is offline without a
   * result). A rollout with no expected hosts never succeeded. `complete` and not `succeeded`: it ended short.
   */
  succeeded: z.boolean(),
  /** The newest later rollout of the same app (same or newer incarnation), when there is one. */
  superseded_by: z.string().nullable(),
  first_result_at: isoTime.nullable(),
  last_result_at: isoTime.nullable(),
  /** Apply durations of the hosts that applied it (ms; nearest-rank percentiles), null without any. */
  apply_ms: z.object({ p50: z.number().nullable(), p99: z.number().nullable() }),
  state: rolloutStateSchema,
  /** 1-based index of the current wave (the last one once it ended). */
  wave: z.number().int().min(1),
  waves: z.array(rolloutWaveSchema),
  /** Why it stopped short (the budget exceeded and the first errors, aborted by whom, superseded by which rollout); null otherwise. */
  abort_reason: z.string().nullable(),
  /** The rollout of the rollback revision made when it failed, when one was made. */
  rollback_rollout_id: z.string().nullable(),
});
export type RolloutSummary = z.infer<typeof rolloutSummarySchema>;

export const rolloutHostSchema = z.object({
  host: hostIdSchema,
  state: rolloutHostStateSchema,
  expected: z.boolean(),
  /** Whether the host is online now (from its heartbeats). */
  online: z.boolean(),
  error: z.string().nullable(),
  image_digest: z.string().nullable(),
  durations_ms: z.object({ pull: z.number(), apply: z.number() }).nullable(),
  reported_at: isoTime.nullable(),
});
export type RolloutHost = z.infer<typeof rolloutHostSchema>;

export const rolloutFailureSchema = z.object({ host: hostIdSchema, error: z.string().nullable(), at: isoTime });
export type RolloutFailure = z.infer<typeof rolloutFailureSchema>;

export const rolloutProgressSchema = rolloutSummarySchema.extend({
  /** The counts per region (`hub`: hosts outside any); they add up to the rollout's. */
  regions: rolloutRegionsSchema,
  /** Failed hosts, oldest failure first (at most the query's `failuresLimit`; `failed` has the count). */
  failures: z.array(rolloutFailureSchema),
  /** One page of hosts, by host id. */
  hosts: z.array(rolloutHostSchema),
  /** Pass as `hostsAfter` for the next page; null on the last one. */
  hosts_next: z.string().nullable(),
});
export type RolloutProgress = z.infer<typeof rolloutProgressSchema>;

export const rolloutListSchema = z.object({
  rollouts: z.array(rolloutSummarySchema),
  /** Pass as `before` for the next (older) page; null on the last one. */
  next: z.string().nullable(),
});
export type RolloutList = z.infer<typeof rolloutListSchema>;

export const HOST_STATUSES = ['online', 'offline'] as const;
export const hostStatusSchema = z.enum(HOST_STATUSES);
export type HostStatus = z.infer<typeof hostStatusSchema>;

export const hostSchema = z.object({
  id: hostIdSchema,
  status: hostStatusSchema,
  /** Apps the host's worker serves. */
  apps: z.array(appNameSchema),
  /** Per app: the incarnation and revision running and the containers' states (last heartbeat). */
  running: z.array(
    z.object({
      app: appNameSchema,
      incarnation: z.number().int().positive().nullable(),
      revision: z.number().int().positive().nullable(),
      containers: z.array(containerStateSchema),
      /** Drift the host's worker repaired since it started, and the last repair (from the heartbeat). */
      repairs: z.number().int().min(0).optional(),
      last_repair: z.object({ at: isoTime, what: z.string() }).nullable().optional(),
    }),
  ),
  cores: z.number().int(),
  memory_mb: z.number().int(),
  worker_version: z.string(),
  heartbeat_interval_seconds: z.number(),
  first_seen: isoTime,
  last_seen: isoTime,
  /** When the host counts (or counted) as offline unless another heartbeat comes. */
  offline_after: isoTime,
  /**
   * Two worker processes sent heartbeats under this host id, taking turns, within its offline window:
   * two workers with the same HOST_ID. Both are flagged (which one is right cannot be told).
   */
  duplicate: z.boolean(),
  /** Worker processes heard within the offline window (1 normally; 2 for a moment after a restart). */
  instances: z.number().int().min(0),
  /** The latest usage sample its worker sent (CPU, memory, disk, per container); null: none yet (or reporting off). */
  usage: hostUsageSchema.nullable(),
  /** The device group its newest heartbeat says it follows (DEVICE_GROUP); null: none. */
  device_group: z.string().nullable(),
  /** The region it joined (its join token's); null: the hub, or a host with no credential of its own. */
  region: z.string().nullable(),
});
export type Host = z.infer<typeof hostSchema>;

export const hostListSchema = z.object({
  hosts: z.array(hostSchema),
  /** Pass as `after` for the next page; null on the last one. */
  next: z.string().nullable(),
});
export type HostList = z.infer<typeof hostListSchema>;
