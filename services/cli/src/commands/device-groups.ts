import type { DeviceGroup, DeviceGroupChanged, DeviceGroupInfo } from '@nebula/client';
import { arg, type Command, type Ctx, print, printJson } from '../context.ts';
import { groupPatchOf, nameList } from '../device-group-flags.ts';
import { EXIT } from '../errors.ts';
import { keyValues, table } from '../format.ts';
import { mapLimited } from '../map-limited.ts';
import { afterAction, follow } from '../rollout-follow.ts';

/**
 * `nebula device-groups ...` (alias `dg`): device groups, the sets of apps and cron jobs that every
 * host started with DEVICE_GROUP=<group> runs (`nebula groups` is user groups). list, get, info,
 * create, update, delete, prune; `nebula prune` prunes every group. A change is a rollout the hosts
 * of the group report on: --wait follows it as `apps update --wait` does.
 *
 * `update` sends what the flags say: --apps / --cron-jobs replace that list (the other stays),
 * --add-app / --remove-app (and the cron job ones) edit the list on the server, under the group's
 * lock, so two people adding an app each lose neither.
 */

function groupView(g: DeviceGroup): string {
  return keyValues([
    ['device group', g.device_group],
    ['apps', g.apps.join(', ')],
    ['cron jobs', g.cron_jobs.join(', ')],
    ['device_group_id', g.device_group_id],
    ['prune_id', g.prune_id],
    ['updated', g.updated_at],
  ]);
}

function infoView(i: DeviceGroupInfo, name: string): string {
  const apps = i.apps.map((a) => [a.app_name, a.docker_image, a.running ? 'yes' : 'no', a.app_id]);
  const jobs = i.cron_jobs.map((j) => [j.cron_job_name, `${j.schedule} (${j.timezone})`, j.docker_image, j.running ? 'yes' : 'no', j.cron_job_id]);
  return [
    keyValues([
      ['device group', name],
      ['device_group_id', i.device_group_id],
      ['prune_id', i.prune_id],
    ]),
    apps.length === 0 ? 'no apps' : table(['APP', 'IMAGE', 'RUNNING', 'APP_ID'], apps),
    jobs.length === 0 ? 'no cron jobs' : table(['CRON JOB', 'SCHEDULE', 'IMAGE', 'RUNNING', 'ID'], jobs),
  ].join('\n\n');
}

function changed(ctx: Ctx, g: DeviceGroupChanged, what: string): Promise<number> {
  const label = `${what} (device_group_id ${g.device_group_id}, prune_id ${g.prune_id}; ${g.expected_hosts.length} host(s) expected)`;
  return afterAction(ctx, `device group ${g.device_group}`, label, g);
}

export const deviceGroupsCommands: Record<string, Command> = {
  async 'device-groups list'(ctx) {
    const { device_groups } = await ctx.nebula.deviceGroups.list.query();
    if (ctx.json) {
      printJson(ctx, { device_groups });
      return EXIT.ok;
    }
    // One read per group (a few at a time): one not readable by this user shows only its name.
    const rows = await mapLimited(device_groups.sort(), 8, async (name) => {
      const g = await ctx.nebula.deviceGroups.get.query({ name }).catch(() => null);
      return g ? [name, g.apps.join(','), g.cron_jobs.join(','), g.device_group_id, g.prune_id] : [name, null, null, null, null];
    });
    print(ctx, rows.length === 0 ? 'no device groups' : table(['DEVICE GROUP', 'APPS', 'CRON JOBS', 'ID', 'PRUNE'], rows));
    return EXIT.ok;
  },

  async 'device-groups get'(ctx) {
    const g = await ctx.nebula.deviceGroups.get.query({ name: arg(ctx, 'group') });
    if (ctx.json) printJson(ctx, g);
    else print(ctx, groupView(g));
    return EXIT.ok;
  },

  async 'device-groups info'(ctx) {
    const name = arg(ctx, 'group');
    const i = await ctx.nebula.deviceGroups.info.query({ name });
    if (ctx.json) printJson(ctx, i);
    else print(ctx, infoView(i, name));
    return EXIT.ok;
  },

  async 'device-groups create'(ctx) {
    const name = arg(ctx, 'group');
    const g = await ctx.nebula.deviceGroups.create.mutate({
      name,
      apps: nameList(ctx.values.apps, '--apps') ?? [],
      cron_jobs: nameList(ctx.values['cron-jobs'], '--cron-jobs') ?? [],
    });
    return changed(ctx, g, 'created');
  },

  async 'device-groups update'(ctx) {
    const name = arg(ctx, 'group');
    return changed(ctx, await ctx.nebula.deviceGroups.patch.mutate({ name, ...groupPatchOf(ctx.values) }), 'updated');
  },

  async 'device-groups delete'(ctx) {
    const name = arg(ctx, 'group');
    const r = await ctx.nebula.deviceGroups.delete.mutate({ name });
    return afterAction(ctx, `device group ${name}`, "deleted: its hosts remove the group's apps and cron jobs", r);
  },

  async 'device-groups prune'(ctx) {
    return changed(ctx, await ctx.nebula.deviceGroups.prune.mutate({ name: arg(ctx, 'group') }), 'prune requested');
  },

  async prune(ctx) {
    const r = await ctx.nebula.deviceGroups.pruneAll.mutate();
    const groups = Object.keys(r.prune_ids).sort();
    if (ctx.json && !ctx.values.wait) printJson(ctx, r);
    else if (!ctx.json)
      print(
        ctx,
        groups.length === 0
          ? 'no device groups to prune'
          : table(
              ['DEVICE GROUP', 'PRUNE_ID', 'ROLLOUT'],
              groups.map((g) => [g, r.prune_ids[g], r.rollout_ids[g]]),
            ),
      );
    if (!ctx.values.wait) return EXIT.ok;
    // One group after the other; the exit code is the worst.
    let code: number = EXIT.ok;
    const rollouts: Record<string, unknown> = {};
    for (const g of groups) {
      const id = r.rollout_ids[g];
      if (id === undefined) continue;
      const { last, code: c } = await follow(ctx, id);
      rollouts[g] = last;
      code = Math.max(code, c);
    }
    if (ctx.json) print(ctx, JSON.stringify({ ...r, rollouts }));
    return code;
  },
};
