import { appNameSchema, type RolloutProgress, rolloutHostStateSchema, rolloutListSchema, rolloutProgressSchema } from '@nebula/contracts';
import { getRolloutProgress, listRollouts, type RolloutProgressOptions } from '@nebula/db';
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { requireAccess } from '../access/guard.ts';
import type { Identity } from '../auth.ts';
import { findLiveApp } from '../db/apps.ts';
import { AppNotFoundError, apiErrorOf, RolloutNotFoundError } from '../errors.ts';
import { authedProcedure, type Context, router } from '../trpc.ts';
import { rolloutCommandProcedures } from './rollout-commands.ts';

/**
 * Rollouts: a revision on its way to the hosts that serve the app. Progress is computed when asked
 * (libs/db rollout-progress.ts) from the rollout, the hosts' results and their heartbeats, so every
 * read, `watch` included, judges online/offline at that moment.
 *
 * `watch` (a subscription over server-sent events):
 *
 *   subscribe ──▶ read progress ──changed?──▶ push ──complete?──▶ end (the client sees "return")
 *                    ▲                                  │ no
 *                    └──────── wait watchPollMs ◀───────┘     (server stopping or client gone: end)
 *
 * Bounded (http/trpc-route.ts, trpc.ts): at most API_WATCH_MAX_PER_IDENTITY open per user (429 above),
 * a keep-alive ping every API_WATCH_PING_MS, and ended by the server after API_WATCH_MAX_DURATION_MS
 * (the client's EventSource reconnects and gets the current progress again).
 *
 * Polling, not LISTEN/NOTIFY: a host going offline changes progress without any write, so a reader
 * has to look again anyway; one indexed query per watcher every half second is cheap.
 *
 * Number fields are declared here with z.coerce (see apps.ts on trpc-to-openapi's coercion).
 */
const progressInput = z.strictObject({
  id: z.uuid(),
  /** Hosts per page (default 100, at most 1000). */
  hosts_limit: z.coerce.number().int().min(1).max(1000).optional(),
  /** The `hosts_next` of the previous page. */
  hosts_after: z.string().min(1).max(253).optional(),
  host_state: rolloutHostStateSchema.optional(),
  /** At most this many entries in `failures` (default 100, at most 1000). */
  failures_limit: z.coerce.number().int().min(1).max(1000).optional(),
});
type ProgressInput = z.output<typeof progressInput>;

function progressOptions(ctx: Context, input: Omit<ProgressInput, 'id'>): RolloutProgressOptions {
  return {
    offlineAfterMissed: ctx.settings.offlineAfterMissedHeartbeats,
    hostsLimit: input.hosts_limit,
    hostsAfter: input.hosts_after,
    hostState: input.host_state,
    failuresLimit: input.failures_limit,
  };
}

/** "ro" on what the rollout changes: its app, or (a group change) its device group. */
function requireReadOf(ctx: Context & { identity: Identity }, p: RolloutProgress): void {
  if (p.kind === 'group') requireAccess(ctx.identity, 'device_groups', p.app, 'ro');
  else requireAccess(ctx.identity, 'apps', p.app, 'ro');
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export const rolloutsRouter = router({
  get: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/rollouts/{id}',
        tags: ['rollouts'],
        summary: 'Progress of one change: counts, failures with their errors, and a page of hosts',
        errorResponses: { 400: 'not a rollout id', 403: '{"rollout_exists": false}' },
      },
    })
    .input(progressInput)
    .output(rolloutProgressSchema)
    .query(async ({ ctx, input }) => {
      const { id, ...rest } = input;
      const p = await getRolloutProgress(ctx.db, id, progressOptions(ctx, rest));
      if (!p) throw new RolloutNotFoundError(id);
      requireReadOf(ctx, p);
      return p;
    }),

  list: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/apps/{name}/rollouts',
        tags: ['rollouts'],
        summary: "An app's rollouts, newest first, each with its progress summary; page with `before`",
        errorResponses: { 400: 'bad limit or cursor', 403: 'no such app and no rollouts of it: {"app_exists": false}' },
      },
    })
    .input(z.strictObject({ name: appNameSchema, limit: z.coerce.number().int().min(1).max(100).default(20), before: z.uuid().optional() }))
    .output(rolloutListSchema)
    .query(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'apps', input.name, 'ro');
      const list = await listRollouts(ctx.db, input.name, {
        offlineAfterMissed: ctx.settings.offlineAfterMissedHeartbeats,
        limit: input.limit,
        before: input.before,
      });
      // A deleted app's rollouts stay listable; a name that never had any is a mistake worth saying.
      if (list.rollouts.length === 0 && input.before === undefined && !(await findLiveApp(ctx.db, input.name))) throw new AppNotFoundError(input.name);
      return list;
    }),

  /** Pushes the progress whenever it changes, first at once; ends when the rollout is complete. */
  watch: authedProcedure.input(progressInput).subscription(async function* ({ ctx, input, signal }): AsyncGenerator<RolloutProgress, void, unknown> {
    const { id, ...rest } = input;
    const opts = progressOptions(ctx, rest);
    const everyMs = ctx.settings.watchPollMs ?? 500;
    const stop = AbortSignal.any([signal ?? new AbortController().signal, ctx.stopping ?? new AbortController().signal]);
    let last = '';
    while (!stop.aborted) {
      const p = await getRolloutProgress(ctx.db, id, opts).catch((err: unknown) => {
        // Inside the stream too: the database not answering is an error event with its code (503).
        const mapped = apiErrorOf(err);
        throw mapped ? new TRPCError({ code: mapped.code, message: mapped.message, cause: mapped }) : err;
      });
      // Thrown inside the stream, past the error-mapping middleware: give the code here.
      if (!p) throw new TRPCError({ code: 'FORBIDDEN', message: `rollout "${id}" does not exist`, cause: new RolloutNotFoundError(id) });
      try {
        requireReadOf(ctx, p);
      } catch (err) {
        throw new TRPCError({ code: 'FORBIDDEN', message: (err as Error).message, cause: err });
      }
      const text = JSON.stringify(p);
      if (text !== last) {
        last = text;
        yield p;
      }
      if (p.complete) return;
      await pause(everyMs, stop);
    }
  }),

  ...rolloutCommandProcedures,
});
