import type { UserGroup } from '@nebula/client';
import { arg, type Command, print, printJson } from '../context.ts';
import { EXIT } from '../errors.ts';
import { keyValues, table } from '../format.ts';
import { accessList, groupCreateInput, groupPatch, needsCurrent, parseGroupFlags } from '../group-flags.ts';
import { mapLimited } from '../map-limited.ts';

/**
 * `nebula groups ...`: user groups (admins only): list, get, create, update, delete. The flags are
 * checked and turned into the API's fields in group-flags.ts; an update that adds or removes members
 * or map entries reads the group first and sends the whole member list or map (the API replaces a
 * map or list given), so a change made by someone else between the read and the write is lost.
 */
const yesNo = (v: boolean) => (v ? 'yes' : 'no');

function groupView(g: UserGroup): string {
  return keyValues([
    ['group', g.user_group],
    ['members', g.group_members.join(', ')],
    ['apps', accessList(g.apps)],
    ['device groups', accessList(g.device_groups)],
    ['cron jobs', accessList(g.cron_jobs)],
    ['admin', yesNo(g.admin)],
    ['pruning allowed', yesNo(g.pruning_allowed)],
    ['privileged allowed', yesNo(g.privileged_allowed)],
  ]);
}

export const groupsCommands: Record<string, Command> = {
  async 'groups list'(ctx) {
    const { user_groups } = await ctx.nebula.userGroups.list.query();
    if (ctx.json) {
      printJson(ctx, { user_groups });
      return EXIT.ok;
    }
    const docs = await mapLimited(user_groups.sort(), 8, (name) => ctx.nebula.userGroups.get.query({ name }).catch(() => null));
    const rows = docs
      .filter((g) => g !== null)
      .map((g) => [
        g.user_group,
        g.group_members.join(','),
        accessList(g.apps).replaceAll(' ', ''),
        yesNo(g.admin),
        [g.pruning_allowed ? 'pruning' : '', g.privileged_allowed ? 'privileged' : ''].filter((x) => x).join(','),
      ]);
    print(ctx, rows.length === 0 ? 'no user groups' : table(['GROUP', 'MEMBERS', 'APPS', 'ADMIN', 'ALLOWED'], rows));
    return EXIT.ok;
  },

  async 'groups get'(ctx) {
    const g = await ctx.nebula.userGroups.get.query({ name: arg(ctx, 'group') });
    if (ctx.json) printJson(ctx, g);
    else print(ctx, groupView(g));
    return EXIT.ok;
  },

  async 'groups create'(ctx) {
    const name = arg(ctx, 'group');
    const g = await ctx.nebula.userGroups.create.mutate({ name, ...groupCreateInput(parseGroupFlags(ctx.values, 'create')) });
    if (ctx.json) printJson(ctx, g);
    else print(ctx, `user group ${g.user_group} created\n${groupView(g)}`);
    return EXIT.ok;
  },

  async 'groups update'(ctx) {
    const name = arg(ctx, 'group');
    const flags = parseGroupFlags(ctx.values, 'update');
    const current = needsCurrent(flags) ? await ctx.nebula.userGroups.get.query({ name }) : null;
    const { patch, notes } = groupPatch(flags, current);
    for (const n of notes) ctx.io.err.write(`note: ${n}\n`);
    const g = await ctx.nebula.userGroups.update.mutate({ name, ...patch });
    if (ctx.json) printJson(ctx, g);
    else print(ctx, `user group ${g.user_group} updated\n${groupView(g)}`);
    return EXIT.ok;
  },

  async 'groups delete'(ctx) {
    const name = arg(ctx, 'group');
    await ctx.nebula.userGroups.delete.mutate({ name });
    if (ctx.json) printJson(ctx, { user_group: name, deleted: true });
    else print(ctx, `user group ${name} deleted`);
    return EXIT.ok;
  },
};
