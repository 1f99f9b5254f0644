import { type AppConfig, appConfigSchema, appNameSchema, rolloutSummarySchema } from '@nebula/contracts';
import { z } from 'zod';
import { requireAccess, requirePrivilegeFor, visibleConfig } from '../access/guard.ts';
import type { Identity } from '../auth.ts';
import { type ChangeRequest, diffConfigs, type FieldChange, planChange } from '../changes.ts';
import { type AppState, changeApp, createApp, deleteApp, findLiveApp, getLiveAppView, getRevisionConfig, listLiveAppNames } from '../db/apps.ts';
import { listRevisionPage } from '../db/history.ts';
import { AppNotFoundError, RevisionNotFoundError } from '../errors.ts';
import { authedProcedure, router } from '../trpc.ts';
import { dryRunRouter } from './app-dry-run.ts';
import { changeOptions, configPlanner, createInput, patchInput, plannedBy, updateInput } from './app-inputs.ts';

/**
 * Apps: the original's routes (list, get, create, delete, stop, start, restart, update) plus roll,
 * pull, rollback and history. Every change is a new revision (`app_id`) published to workers.
 * REST paths are the original's under /api/v2; see ../http/v2-routes.ts for the exact status codes
 * and bodies of those.
 *
 * trpc-to-openapi makes number/boolean fields of the input of each procedure it serves coercing (it
 * sets `coerce` on the schema objects themselves). The procedures it serves (roll, pull, rollback,
 * history, rollouts.get) therefore take no shared number/boolean schema from @nebula/contracts.
 */
const nameInput = z.strictObject({ name: appNameSchema });

/** An app as the original returns it (config fields, app_name, app_id), plus incarnation and rollout_id. */
export const appDocSchema = appConfigSchema.safeExtend({
  app_name: z.string(),
  app_id: z.number().int().positive(),
  incarnation: z.number().int().positive(),
  rollout_id: z.string(),
});
export type AppDoc = z.output<typeof appDocSchema>;

export function toDoc(app: AppState): AppDoc {
  return { app_name: app.name, app_id: app.revision, incarnation: app.incarnation, rollout_id: app.rolloutId, ...app.config };
}

/** A change of env_vars stays listed for a reader without "rw", with its values hidden. */
function visibleChanges(identity: Identity, app: string, changes: FieldChange[]): FieldChange[] {
  return changes.map((c) => {
    if (c.field !== 'env_vars') return c;
    const hide = (v: unknown) => (v === undefined ? undefined : visibleConfig(identity, app, { env_vars: v as AppConfig['env_vars'] }).env_vars);
    const out: FieldChange = { field: c.field };
    if (c.from !== undefined) out.from = hide(c.from);
    if (c.to !== undefined) out.to = hide(c.to);
    return out;
  });
}

/** A revision whose message could never be published (the relay dead-lettered it); later ones still go out. */
const publishErrorSchema = z.object({ app_id: z.number().int().positive(), rollout_id: z.string(), error: z.string(), failed_at: z.string() });

const FORBIDDEN_MISSING = { 403: 'the app does not exist: {"app_exists": false}' };

function action(kind: 'stop' | 'start' | 'restart' | 'roll' | 'pull', summary: string, extraErrors: Record<number, string> = {}) {
  return authedProcedure
    .meta({
      openapi: { method: 'POST', path: `/api/v2/apps/{name}/${kind}`, tags: ['apps'], summary, errorResponses: { ...FORBIDDEN_MISSING, ...extraErrors } },
      successStatus: 202,
    })
    .input(nameInput)
    .output(appDocSchema)
    .mutation(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'apps', input.name, 'rw');
      const req: ChangeRequest = { kind };
      const r = await changeApp(ctx.db, input.name, (current) => planChange(input.name, current, req), changeOptions(ctx));
      return toDoc(r.app);
    });
}

const notRunning = { 403: 'the app does not exist ({"app_exists": false}) or is stopped ({"running_before_restart": false})' };

export const appsRouter = router({
  list: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/apps', tags: ['apps'], summary: 'Names of all apps' } })
    .input(z.void())
    .output(z.object({ apps: z.array(z.string()) }))
    .query(async ({ ctx }) => ({ apps: await listLiveAppNames(ctx.db) })),

  get: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/apps/{name}', tags: ['apps'], summary: 'One app', errorResponses: FORBIDDEN_MISSING } })
    .input(nameInput)
    // The original's fields, plus the latest rollout's progress summary (null before the first) and
    // the revisions that could never be published (dead letters; the newest ten).
    .output(appDocSchema.safeExtend({ rollout: rolloutSummarySchema.nullable(), publish_errors: z.array(publishErrorSchema) }))
    .query(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'apps', input.name, 'ro');
      const view = await getLiveAppView(ctx.db, input.name, { offlineAfterMissed: ctx.settings.offlineAfterMissedHeartbeats });
      if (!view) throw new AppNotFoundError(input.name);
      const publish_errors = view.publishFailures.map((f) => ({
        app_id: f.revision,
        rollout_id: f.rolloutId,
        error: f.error,
        failed_at: f.failedAt.toISOString(),
      }));
      return { ...visibleConfig(ctx.identity, view.app.name, toDoc(view.app)), rollout: view.rollout, publish_errors };
    }),

  create: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/apps/{name}',
        tags: ['apps'],
        summary: 'Create an app (only docker_image is required); revision 1 of a new incarnation',
        errorResponses: { 400: 'invalid config: {"missing_parameters": ["docker_image"], "errors": {...}}', 403: 'exists already: {"app_exists": true}' },
      },
    })
    .input(createInput)
    .output(appDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...config } = input;
      requireAccess(ctx.identity, 'apps', name, 'rw');
      requirePrivilegeFor(ctx.identity, name, config);
      const r = await createApp(ctx.db, name, config, changeOptions(ctx));
      return toDoc(r.app);
    }),

  delete: authedProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/api/v2/apps/{name}',
        tags: ['apps'],
        summary: 'Delete an app: workers remove its containers',
        errorResponses: {
          ...FORBIDDEN_MISSING,
          409: 'device groups name it: {"error": "app X is in device groups g1, g2: remove it from them first", "device_groups": [...]}',
        },
      },
    })
    .input(nameInput)
    .output(z.object({ rollout_id: z.string() }))
    .mutation(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'apps', input.name, 'rw');
      const r = await deleteApp(ctx.db, input.name, changeOptions(ctx));
      return { rollout_id: r.rolloutId };
    }),

  stop: action('stop', 'Stop the app (running: false)'),
  start: action('start', 'Start the app (running: true)'),
  restart: action('restart', 'Restart every container (re-pulls the image)', notRunning),
  roll: action('roll', 'Rolling restart, one container at a time', notRunning),
  pull: action('pull', 'Re-pull the image; replace containers whose image changed'),

  update: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/apps/{name}/update',
        tags: ['apps'],
        summary: 'Replace the whole config (omitted fields take their defaults; env_vars defaults to [])',
        errorResponses: { 400: 'invalid config', ...FORBIDDEN_MISSING },
      },
      successStatus: 202,
    })
    .input(updateInput)
    .output(appDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...config } = input;
      requireAccess(ctx.identity, 'apps', name, 'rw');
      const r = await changeApp(ctx.db, name, configPlanner(ctx.identity, name, { kind: 'update', config }), changeOptions(ctx));
      return toDoc(r.app);
    }),

  patch: authedProcedure
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/api/v2/apps/{name}/update',
        tags: ['apps'],
        summary: 'Merge a partial config into the current one (PUT does the same)',
        errorResponses: { 400: 'invalid or empty config', ...FORBIDDEN_MISSING },
      },
      successStatus: 202,
    })
    .input(patchInput)
    .output(appDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...patch } = input;
      requireAccess(ctx.identity, 'apps', name, 'rw');
      const r = await changeApp(ctx.db, name, configPlanner(ctx.identity, name, { kind: 'patch', patch }), changeOptions(ctx));
      return toDoc(r.app);
    }),

  rollback: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/apps/{name}/rollback',
        tags: ['apps'],
        summary: 'A new revision with the config of revision N',
        errorResponses: { 403: 'no such app ({"app_exists": false}) or revision ({"revision_exists": false})' },
      },
      successStatus: 202,
    })
    // The pipe keeps trpc-to-openapi from coercing the body's "1" or true into a number.
    .input(z.strictObject({ name: appNameSchema, revision: z.number().int().positive().pipe(z.number()) }))
    .output(appDocSchema)
    .mutation(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'apps', input.name, 'rw');
      // The target revision is read inside the change's transaction, under the app's row lock.
      const r = await changeApp(
        ctx.db,
        input.name,
        async (current, state, trx) => {
          const to = await getRevisionConfig(trx, state.incarnation, input.revision);
          if (to === null) throw new RevisionNotFoundError(input.name, input.revision);
          return plannedBy(ctx.identity, input.name, planChange(input.name, current, { kind: 'rollback', to }));
        },
        changeOptions(ctx),
      );
      return toDoc(r.app);
    }),

  history: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/apps/{name}/history',
        tags: ['apps'],
        summary: 'Revisions, newest first: who, when, action, and what changed; page with `before`',
        errorResponses: { 400: 'bad limit or cursor', ...FORBIDDEN_MISSING },
      },
    })
    .input(
      z.strictObject({
        name: appNameSchema,
        limit: z.coerce.number().int().min(1).max(1000).default(50),
        /** Only revisions older than this one: the `next` of the previous page. */
        before: z.coerce
          .number()
          .int()
          .min(1)
          .max(2 ** 31 - 1)
          .optional(),
      }),
    )
    .output(
      z.object({
        app_name: z.string(),
        incarnation: z.number().int(),
        revisions: z.array(
          z.object({
            app_id: z.number().int(),
            action: z.string(),
            actor: z.string().nullable(),
            created_at: z.string(),
            rollout_id: z.string(),
            /** Why the revision was made when no person asked for it (a rollback after a failed rollout: which one, how many hosts failed, the first errors). */
            reason: z.string().nullable(),
            changes: z.array(z.object({ field: z.string(), from: z.unknown().optional(), to: z.unknown().optional() })),
          }),
        ),
        /** `before` for the next, older page; null on the last one. */
        next: z.number().int().nullable(),
      }),
    )
    .query(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'apps', input.name, 'ro');
      const app = await findLiveApp(ctx.db, input.name);
      if (!app) throw new AppNotFoundError(input.name);
      const page = await listRevisionPage(ctx.db, app.incarnation, { limit: input.limit, before: input.before });
      const revisions = page.rows.map((r, i) => ({
        app_id: r.revision,
        action: r.action,
        actor: r.actor,
        created_at: r.createdAt.toISOString(),
        rollout_id: r.rolloutId,
        reason: r.reason,
        changes: visibleChanges(ctx.identity, app.name, diffConfigs(page.rows[i + 1]?.config ?? page.previousConfig, r.config)),
      }));
      return { app_name: app.name, incarnation: app.incarnation, revisions, next: page.next };
    }),

  /** create, update and patch without writing anything: the config they would store and the waves it would go out in. */
  dryRun: dryRunRouter,
});
