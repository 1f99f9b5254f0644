import { z } from 'zod';
import { type AppConfig, appConfigSchema } from './app-config.ts';
import { appNameSchema, hostIdSchema } from './names.ts';
import { hostUsageSchema } from './usage.ts';

/**
 * What crosses NATS. Every payload is versioned (`v`) and parsed with these schemas on receipt:
 * `msg.json()` only casts.
 *
 *   API ──apps.<app>──────────────▶ workers          (stream APPS: latest per app always kept)
 *   workers ──results.<app>.<host>─▶ notifier        (stream RESULTS)
 *   workers ──hosts.<host>─────────▶ notifier        (stream HOSTS: heartbeats)
 */

/**
 * The schema version of the messages this code writes and understands (`v` of each payload). A field
 * added as optional keeps the version (older readers drop what they do not know: zod objects strip
 * unknown keys); a change that a reader of this version could not take as it is (a field renamed,
 * removed, or of another meaning) makes a new one. A reader that gets a version newer than its own
 * reports it and leaves the message alone (`decode` in @nebula/messaging): it never guesses. So that
 * old workers and a new control plane work together during an upgrade, a new version is read beside
 * the old one for a release (the readers accept both) before the writers switch to it.
 */
export const MESSAGE_VERSION = 1;

/**
 * App messages of one wave of a rollout (`wave` set) are written as version 2, every other app
 * message as version 1: a worker from before waves drops the unknown `wave` and would apply a canary
 * change on every host, so it must refuse the message instead (as newer: "upgrade the worker").
 * Workers read both.
 */
export const WAVE_MESSAGE_VERSION = 2;

export const APP_ACTIONS = ['create', 'update', 'stop', 'start', 'restart', 'roll', 'pull', 'rollback', 'delete'] as const;
export const appActionSchema = z.enum(APP_ACTIONS);
export type AppAction = z.infer<typeof appActionSchema>;

/**
 * One revision of one app. Workers order messages of an app by (incarnation, revision): an app that
 * is deleted and created again gets a new, larger incarnation, so it is never mistaken for its
 * predecessor even though its revision (`app_id`) starts again at 1.
 */
/** The revision every host outside a wave runs meanwhile: the app's last good revision. */
export const waveBaseSchema = z.object({
  incarnation: z.number().int().positive(),
  revision: z.number().int().positive(),
  rollout_id: z.string().min(1),
  config: appConfigSchema,
});
export type WaveBase = z.infer<typeof waveBaseSchema>;

/**
 * The part of a rollout in waves that one message carries: the revision is for `hosts` (every wave so
 * far, cumulative), and every other host runs `base` meanwhile (null: the app is new, nothing runs
 * elsewhere yet). A later wave of the same revision is a new message with a larger `step`; the
 * message without `wave` that ends a successful rollout is the revision for every host, late joiners
 * included. Each message is the whole desired state: a worker that restarts needs only the newest.
 */
export const waveSchema = z.object({
  /** 1-based, the wave's number: messages of one revision are ordered by it. */
  step: z.number().int().positive(),
  hosts: z.array(hostIdSchema).max(100_000),
  base: waveBaseSchema.nullable(),
});
export type Wave = z.infer<typeof waveSchema>;

export const appMessageSchema = z.object({
  v: z.literal([MESSAGE_VERSION, WAVE_MESSAGE_VERSION]),
  app: appNameSchema,
  /** Id of this incarnation of the app; never reused, grows with every create. */
  incarnation: z.number().int().positive(),
  /** The app's `app_id`: 1 at create, +1 per change. */
  revision: z.number().int().positive(),
  action: appActionSchema,
  config: appConfigSchema,
  rollout_id: z.string().min(1),
  created_at: z.iso.datetime(),
  /** Who made the change (user name), for history and logs. */
  actor: z.string().optional(),
  /** Set while the revision goes out in waves: which hosts run it now, and what the others run. */
  wave: waveSchema.optional(),
});
export type AppMessage = z.infer<typeof appMessageSchema>;

/** True when `a` is a newer revision of the app than `b`. */
export function isNewer(a: { incarnation: number; revision: number }, b: { incarnation: number; revision: number }): boolean {
  return a.incarnation > b.incarnation || (a.incarnation === b.incarnation && a.revision > b.revision);
}

/**
 * True when message `a` comes after message `b`: a newer revision, or the same revision at a later
 * wave (a message without `wave` comes after every wave of its revision).
 */
export function isLaterMessage(a: Pick<AppMessage, 'incarnation' | 'revision' | 'wave'>, b: Pick<AppMessage, 'incarnation' | 'revision' | 'wave'>): boolean {
  if (isNewer(a, b)) return true;
  if (a.incarnation !== b.incarnation || a.revision !== b.revision) return false;
  return (a.wave?.step ?? Number.POSITIVE_INFINITY) > (b.wave?.step ?? Number.POSITIVE_INFINITY);
}

/** What a message asks of one host: the revision itself (`revision`), or its wave's base meanwhile. */
export function targetOf(m: AppMessage, host: string): 'revision' | 'base' {
  return m.wave === undefined || m.wave.hosts.includes(host) ? 'revision' : 'base';
}

/**
 * An app config as it goes to workers: without `rollout_strategy`, which no worker needs and which a
 * worker from before it would refuse (the config is a strict object).
 */
export function wireConfig(config: AppConfig): Omit<AppConfig, 'rollout_strategy'> {
  const { rollout_strategy: _strategy, ...rest } = config;
  return rest;
}

export const containerStateSchema = z.object({
  id: z.string(),
  name: z.string(),
  state: z.string(),
  health: z.string().optional(),
  image: z.string().optional(),
});
export type ContainerState = z.infer<typeof containerStateSchema>;

export const RESULT_STATUSES = ['applied', 'failed', 'superseded'] as const;
export const resultSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  app: appNameSchema,
  host: hostIdSchema,
  incarnation: z.number().int().positive(),
  revision: z.number().int().positive(),
  rollout_id: z.string().min(1),
  action: appActionSchema,
  status: z.enum(RESULT_STATUSES),
  error: z.string().nullable(),
  image_digest: z.string().nullable(),
  containers: z.array(containerStateSchema),
  durations_ms: z.object({ pull: z.number().min(0), apply: z.number().min(0) }),
  at: z.iso.datetime(),
});
export type Result = z.infer<typeof resultSchema>;

export const heartbeatSchema = z.object({
  v: z.literal(MESSAGE_VERSION),
  host: hostIdSchema,
  apps: z.array(
    z.object({
      app: appNameSchema,
      incarnation: z.number().int().positive().nullable(),
      revision: z.number().int().positive().nullable(),
      containers: z.array(containerStateSchema),
      /** Drift repaired by the worker's reconcile since it started (containers created, replaced, removed). */
      repairs: z.number().int().min(0).optional(),
      /** The last repair: when, and what (e.g. "created web-2: missing"). */
      last_repair: z
        .object({ at: z.iso.datetime(), what: z.string().max(4096) })
        .nullable()
        .optional(),
    }),
  ),
  cores: z.number().int().positive(),
  memory_mb: z.number().int().positive(),
  worker_version: z.string(),
  /** Seconds until the next heartbeat; the notifier marks a host offline after a few missed ones. */
  interval_seconds: z.number().positive(),
  /**
   * A random id per worker process: two instances alternating under one host id are two workers
   * with the same HOST_ID (the notifier flags the host). Optional: workers before it send none.
   */
  instance: z.string().min(1).max(64).optional(),
  /**
   * The latest usage sample (gathered every WORKER_REPORT_INTERVAL_SECONDS, so several heartbeats
   * carry the same one): the notifier stores a report per sample. Optional: absent when reporting is
   * off, and workers before it send none.
   */
  usage: hostUsageSchema.optional(),
  /** The device group the worker follows, for its reports; absent: none. */
  device_group: z.string().min(1).max(253).optional(),
  /** The worker's clock: for logs only; the notifier judges liveness by the server's time. */
  at: z.iso.datetime(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const subjects = {
  app: (app: string) => `apps.${app}`,
  allApps: 'apps.>',
  result: (app: string, host: string) => `results.${app}.${host}`,
  allResults: 'results.>',
  heartbeat: (host: string) => `hosts.${host}`,
  allHeartbeats: 'hosts.>',
  /** Device groups' messages (`groups.<g>`) and the hosts' events about them: see device-groups.ts. */
  allGroups: 'groups.>',
  allEvents: 'events.>',
} as const;

/**
 * Stream settings, as plain data (this lib does not depend on the NATS client). Each stream has one
 * owner, the service that creates it and keeps its settings up to date at start; every other service
 * only checks that it exists (and waits for it) and never changes it. All are file-backed, with
 * explicit limits (sizes in bytes, ages in ms; 0 = no limit):
 *
 *   APPS     owner api       every app's latest revisions, kept forever (max_age 0). A full stream
 *                            refuses new revisions (discard new): the relay keeps them in the outbox
 *                            and the oldest-unpublished gauge shows it, rather than the stream
 *                            silently dropping some app's only revision. Per subject the oldest go
 *                            (max_msgs_per_subject), which is how the stream stays small.
 *   RESULTS  owner notifier  a week of results; when full the oldest go (discard old): a result is
 *                            only read by the notifier, which has long consumed it by then.
 *   HOSTS    owner notifier  the latest heartbeat per host, a day at most; discard old.
 *   GROUPS   owner api       every device group's newest messages (`groups.<g>`), kept forever,
 *                            discard new, as APPS.
 *   EVENTS   owner notifier  a week of host events (`events.<host>.group|cron|prune.<name>`):
 *                            group results, cron runs, prunes; discard old, as RESULTS.
 */
export const streams = {
  apps: {
    name: 'APPS',
    owner: 'api',
    subjects: [subjects.allApps],
    storage: 'file',
    /** Enough history for a worker that was away to see every revision; the newest is always kept. */
    max_msgs_per_subject: 64,
    max_msgs: 1_000_000,
    max_bytes: 1024 * 1024 * 1024,
    max_age_ms: 0,
    discard: 'new',
    duplicate_window_ms: 10 * 60_000,
    /** A host reads its apps' newest revision by `$JS.API.DIRECT.GET.APPS.apps.<app>`, a subject its rights can name. */
    allow_direct: true,
  },
  results: {
    name: 'RESULTS',
    owner: 'notifier',
    subjects: [subjects.allResults],
    storage: 'file',
    max_msgs: 10_000_000,
    max_bytes: 1024 * 1024 * 1024,
    max_age_ms: 7 * 24 * 3_600_000,
    discard: 'old',
    duplicate_window_ms: 2 * 60_000,
  },
  hosts: {
    name: 'HOSTS',
    owner: 'notifier',
    subjects: [subjects.allHeartbeats],
    storage: 'file',
    max_msgs_per_subject: 1,
    max_msgs: 1_000_000,
    max_bytes: 256 * 1024 * 1024,
    max_age_ms: 24 * 3_600_000,
    discard: 'old',
    duplicate_window_ms: 2 * 60_000,
  },
  groups: {
    name: 'GROUPS',
    owner: 'api',
    subjects: [subjects.allGroups],
    storage: 'file',
    max_msgs_per_subject: 16,
    max_msgs: 1_000_000,
    max_bytes: 256 * 1024 * 1024,
    max_age_ms: 0,
    discard: 'new',
    duplicate_window_ms: 10 * 60_000,
    /** A host reads its group's newest message by `$JS.API.DIRECT.GET.GROUPS.groups.<g>`. */
    allow_direct: true,
  },
  events: {
    name: 'EVENTS',
    owner: 'notifier',
    subjects: [subjects.allEvents],
    storage: 'file',
    max_msgs: 10_000_000,
    max_bytes: 1024 * 1024 * 1024,
    max_age_ms: 7 * 24 * 3_600_000,
    discard: 'old',
    duplicate_window_ms: 2 * 60_000,
  },
} as const;

/**
 * JetStream message id of a revision: publishing it twice stores it once. The rollout id is a UUID
 * made with the revision, so two different changes never share an id, not even after a PostgreSQL
 * failover that lost the last commits and hands out the same `app:incarnation:revision` again.
 */
export function appMessageId(m: Pick<AppMessage, 'rollout_id' | 'wave'>): string {
  return m.wave === undefined ? m.rollout_id : `${m.rollout_id}:wave-${m.wave.step}`;
}

/**
 * A host is offline once this many heartbeats in a row are missing (its own announced interval
 * each). The default for the notifier's and the API's `HOST_OFFLINE_AFTER_MISSED_HEARTBEATS`.
 */
export const DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS = 3;
