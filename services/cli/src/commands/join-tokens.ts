import { positiveInt } from '../command-line.ts';
import { arg, type Command, print, printJson } from '../context.ts';
import { parseDuration } from '../duration.ts';
import { EXIT } from '../errors.ts';
import { ago, table } from '../format.ts';

/**
 * `nebula hosts join-token ...`: create, list, delete. A token is shown once, when it is made,
 * with the command that starts a worker with it; the API keeps only its hash.
 */
export const joinTokenCommands: Record<string, Command> = {
  async 'hosts join-token create'(ctx) {
    const ttlMs = ctx.values.ttl === undefined ? undefined : parseDuration(ctx.values.ttl);
    const uses = positiveInt(ctx.values.uses, '--uses', 100_000);
    const apps = ctx.values.apps
      ?.split(',')
      .map((a) => a.trim())
      .filter((a) => a !== '');
    const t = await ctx.nebula.hosts.joinTokens.create.mutate({
      ...(ttlMs ? { ttl_seconds: Math.round(ttlMs / 1000) } : {}),
      ...(uses ? { uses } : {}),
      ...(apps && apps.length > 0 ? { apps } : {}),
      ...(ctx.values.description !== undefined ? { description: ctx.values.description } : {}),
      ...(ctx.values.region !== undefined ? { region: ctx.values.region } : {}),
    });
    if (ctx.json) {
      printJson(ctx, t);
      return EXIT.ok;
    }
    print(ctx, t.token);
    ctx.io.err.write(
      `join token ${t.id}: ${t.uses_left === 1 ? 'one use' : `${t.uses_left} uses`}, expires ${t.expires_at}` +
        `${t.apps ? `, apps ${t.apps.join(',')}` : ', any app'}${t.region ? `, region ${t.region}` : ''}. It is not shown again.\n` +
        `on each new host, start the worker as a container:\n  ${t.docker_command}\n` +
        `or, where it is installed (deploy/install-worker.sh), as a process:\n  ${t.command}\n`,
    );
    return EXIT.ok;
  },

  async 'hosts join-token list'(ctx) {
    const { join_tokens } = await ctx.nebula.hosts.joinTokens.list.query();
    if (ctx.json) {
      printJson(ctx, { join_tokens });
      return EXIT.ok;
    }
    const now = Date.now();
    const state = (t: (typeof join_tokens)[number]) => (Date.parse(t.expires_at) <= now ? 'expired' : t.uses_left <= 0 ? 'used' : 'valid');
    print(
      ctx,
      join_tokens.length === 0
        ? 'no join tokens'
        : table(
            ['ID', 'STATE', 'USES LEFT', 'APPS', 'REGION', 'EXPIRES', 'CREATED BY', 'DESCRIPTION'],
            join_tokens.map((t) => [
              t.id,
              state(t),
              t.uses_left,
              t.apps?.join(',') ?? '(any)',
              t.region ?? 'hub',
              `${t.expires_at} (${ago(t.expires_at)})`,
              t.created_by,
              t.description ?? '',
            ]),
          ),
    );
    return EXIT.ok;
  },

  async 'hosts join-token delete'(ctx) {
    const id = arg(ctx, 'id');
    await ctx.nebula.hosts.joinTokens.delete.mutate({ id });
    if (ctx.json) printJson(ctx, { id, deleted: true });
    else print(ctx, `join token ${id} deleted`);
    return EXIT.ok;
  },
};
