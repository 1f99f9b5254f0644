import { type AppConfig, appConfigSchema } from '@nebula/contracts';
import { planRolloutDryRun } from '@nebula/db';
import { z } from 'zod';
import { requireAccess, requirePrivilegeFor } from '../access/guard.ts';
import { findLiveApp, type Planner } from '../db/apps.ts';
import { AppExistsError, AppNotFoundError } from '../errors.ts';
import { authedProcedure, type Context, router } from '../trpc.ts';
import { configPlanner, createInput, patchInput, updateInput } from './app-inputs.ts';

/**
 * `?dry_run=true` of create, update and patch (REST: http/v2-routes.ts; tRPC: `apps.dryRun.*`): the
 * same input, the same checks (access, privileges, the config as a whole, the app existing or not)
 * and the same planner as the real change, then the waves the change would go out in, and nothing
 * written. The update and patch planners run inside a READ ONLY transaction, so even a planner that
 * tried to write could not.
 *
 * Not checked: the size of the message against NATS's max_payload (it is built when the change is
 * recorded); a change that passes a dry run can still be refused for that.
 */
export const dryRunPlanSchema = z.object({
  /** Hosts serving the app now: the rollout's members if the change were made now. */
  members: z.number().int().min(0),
  /** Each wave's own hosts (not the earlier waves'), in the order they would get the change. */
  waves: z.array(z.object({ wave: z.number().int().min(1), percent: z.number(), hosts: z.array(z.string()) })),
});

export const dryRunSchema = z.object({
  dry_run: z.literal(true),
  /** The config the change would store (rollout_strategy included). */
  config: appConfigSchema,
  plan: dryRunPlanSchema,
});
export type DryRun = z.output<typeof dryRunSchema>;

async function answer(ctx: Context, name: string, config: AppConfig): Promise<DryRun> {
  const plan = await planRolloutDryRun(ctx.db, name, config.rollout_strategy, {
    offlineAfterMissedHeartbeats: ctx.settings.offlineAfterMissedHeartbeats,
  });
  return { dry_run: true, config, plan };
}

/** The planner of a change of a live app, run as the real change runs it, in a transaction that cannot write. */
async function planned(ctx: Context, name: string, plan: Planner): Promise<AppConfig> {
  return ctx.db
    .transaction()
    .setAccessMode('read only')
    .execute(async (trx) => {
      const app = await findLiveApp(trx, name);
      if (!app) throw new AppNotFoundError(name);
      return (await plan(app.config, { incarnation: app.incarnation, revision: app.revision }, trx)).config;
    });
}

export const dryRunRouter = router({
  create: authedProcedure
    .input(createInput)
    .output(dryRunSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...config } = input;
      requireAccess(ctx.identity, 'apps', name, 'rw');
      requirePrivilegeFor(ctx.identity, name, config);
      if (await findLiveApp(ctx.db, name)) throw new AppExistsError(name);
      return answer(ctx, name, config);
    }),

  update: authedProcedure
    .input(updateInput)
    .output(dryRunSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...config } = input;
      requireAccess(ctx.identity, 'apps', name, 'rw');
      return answer(ctx, name, await planned(ctx, name, configPlanner(ctx.identity, name, { kind: 'update', config })));
    }),

  patch: authedProcedure
    .input(patchInput)
    .output(dryRunSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...patch } = input;
      requireAccess(ctx.identity, 'apps', name, 'rw');
      return answer(ctx, name, await planned(ctx, name, configPlanner(ctx.identity, name, { kind: 'patch', patch })));
    }),
});
