import { ACTIONS, type Action, positiveInt } from '../command-line.ts';
import { readConfigFile } from '../config-file.ts';
import { arg, type Command, type Ctx, print, printJson } from '../context.ts';
import { EXIT } from '../errors.ts';
import { ago, keyValues, table } from '../format.ts';
import { mapLimited } from '../map-limited.ts';
import { afterAction, rolloutCell } from '../rollout-follow.ts';
import { mergeStrategy, parseStrategyFlags, type RolloutStrategy } from '../strategy-flags.ts';
import { type DryRun, planLines } from '../wave-view.ts';

/** -f of apps create and update; command-line.ts has checked it is there. */
function configFile(ctx: Ctx): string {
  if (ctx.values.file === undefined) throw new Error('internal: no -f <file>');
  return ctx.values.file;
}

/** A dry run's answer: the plan for people, the answer as is for scripts. */
function printPlan(ctx: Ctx, app: string, d: DryRun): number {
  if (ctx.json) printJson(ctx, d);
  else for (const l of planLines(app, d)) print(ctx, l);
  return EXIT.ok;
}

/**
 * The body of `apps update`: the file (if any), with --waves/--bake/--max-failed merged into the
 * strategy the file gives, else (a merge) the one the app has, else (--replace) none.
 */
async function updateBody(ctx: Ctx, app: string): Promise<Record<string, unknown>> {
  const file = ctx.values.file === undefined ? {} : readConfigFile(ctx.values.file, app, ctx.io.readStdin);
  const change = parseStrategyFlags(ctx.values);
  if (change.kind === 'none') return file;
  const current =
    'rollout_strategy' in file
      ? (file.rollout_strategy as Partial<RolloutStrategy> | null)
      : ctx.values.replace || change.kind === 'clear'
        ? null
        : (await ctx.nebula.apps.get.query({ name: app })).rollout_strategy;
  return { ...file, rollout_strategy: mergeStrategy(current, change) };
}

/** `nebula apps ...`: list, get, create, update, the actions, rollback, history. */
export const appsCommands: Record<string, Command> = {
  async 'apps list'(ctx) {
    const { apps } = await ctx.nebula.apps.list.query();
    if (ctx.json) {
      printJson(ctx, { apps });
      return EXIT.ok;
    }
    // One read per app (a few at a time): an app deleted meanwhile is skipped.
    const docs = await mapLimited(apps.sort(), 8, (name) => ctx.nebula.apps.get.query({ name }).catch(() => null));
    const rows = docs.filter((d) => d !== null).map((d) => [d.app_name, d.app_id, d.docker_image, d.running ? 'yes' : 'no', rolloutCell(d.rollout)]);
    print(ctx, rows.length === 0 ? 'no apps' : table(['NAME', 'REVISION', 'IMAGE', 'RUNNING', 'LATEST ROLLOUT'], rows));
    return EXIT.ok;
  },

  async 'apps get'(ctx) {
    const doc = await ctx.nebula.apps.get.query({ name: arg(ctx, 'app') });
    if (ctx.json) {
      printJson(ctx, doc);
      return EXIT.ok;
    }
    const { app_name, app_id, incarnation, rollout_id, rollout, ...config } = doc;
    print(
      ctx,
      keyValues([
        ['name', app_name],
        ['revision', app_id],
        ['incarnation', incarnation],
        ...(Object.entries(config).filter(
          ([, v]) => !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && v !== null && Object.keys(v).length === 0),
        ) as Array<[string, unknown]>),
        [
          'rollout',
          rollout
            ? `${rollout_id} ${rollout.action}: ${rolloutCell(rollout)} (applied ${rollout.applied}, failed ${rollout.failed}, pending ${rollout.pending})`
            : rollout_id,
        ],
      ]),
    );
    return EXIT.ok;
  },

  async 'apps create'(ctx) {
    const app = arg(ctx, 'app');
    const config = readConfigFile(configFile(ctx), app, ctx.io.readStdin);
    const input = { ...(config as { docker_image: string }), name: app };
    if (ctx.values['dry-run']) return printPlan(ctx, app, await ctx.nebula.apps.dryRun.create.mutate(input));
    const doc = await ctx.nebula.apps.create.mutate(input);
    return afterAction(ctx, app, 'created', doc);
  },

  async 'apps update'(ctx) {
    const app = arg(ctx, 'app');
    const config = await updateBody(ctx, app);
    const whole = { ...(config as { docker_image: string }), name: app };
    if (ctx.values['dry-run']) {
      return printPlan(
        ctx,
        app,
        ctx.values.replace ? await ctx.nebula.apps.dryRun.update.mutate(whole) : await ctx.nebula.apps.dryRun.patch.mutate({ ...config, name: app }),
      );
    }
    const doc = ctx.values.replace ? await ctx.nebula.apps.update.mutate(whole) : await ctx.nebula.apps.patch.mutate({ ...config, name: app });
    return afterAction(ctx, app, ctx.values.replace ? 'replaced' : 'updated', doc);
  },

  ...Object.fromEntries(
    ACTIONS.map((action: Action) => [
      `apps ${action}`,
      async (ctx: Ctx) => {
        const name = arg(ctx, 'app');
        if (action === 'delete') return afterAction(ctx, name, 'deleted', await ctx.nebula.apps.delete.mutate({ name }));
        const doc = await ctx.nebula.apps[action].mutate({ name });
        return afterAction(ctx, name, { stop: 'stopped', start: 'started', restart: 'restarting', roll: 'rolling restart', pull: 'pulling' }[action], doc);
      },
    ]),
  ),

  async 'apps rollback'(ctx) {
    const app = arg(ctx, 'app');
    const revision = positiveInt(arg(ctx, 'revision'), '<revision>', 2 ** 31 - 1);
    if (revision === undefined) throw new Error('internal: apps rollback has no <revision>');
    const doc = await ctx.nebula.apps.rollback.mutate({ name: app, revision });
    return afterAction(ctx, app, `rolled back to revision ${revision}`, doc);
  },

  async 'apps history'(ctx) {
    const limit = positiveInt(ctx.values.limit, '--limit', 1000);
    const before = positiveInt(ctx.values.before, '--before', 2 ** 31 - 1);
    const h = await ctx.nebula.apps.history.query({ name: arg(ctx, 'app'), ...(limit ? { limit } : {}), ...(before ? { before } : {}) });
    if (ctx.json) {
      printJson(ctx, h);
      return EXIT.ok;
    }
    const change = (c: { field: string; from?: unknown; to?: unknown }) =>
      'from' in c && 'to' in c
        ? `${c.field}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`
        : 'to' in c
          ? `${c.field}: ${JSON.stringify(c.to)}`
          : `-${c.field}`;
    print(
      ctx,
      table(
        ['REVISION', 'ACTION', 'ACTOR', 'WHEN', 'ROLLOUT', 'CHANGES'],
        h.revisions.map((r) => [
          r.app_id,
          r.action,
          r.actor,
          ago(r.created_at),
          r.rollout_id,
          [r.reason, r.changes.map(change).join(', ')].filter(Boolean).join('; '),
        ]),
      ),
    );
    if (h.next !== null) ctx.io.err.write(`older: nebula apps history ${ctx.args.app} --before ${h.next}\n`);
    return EXIT.ok;
  },
};
