import type { UserDoc } from '@nebula/client';
import { arg, type Command, type Ctx, print, printJson } from '../context.ts';
import { EXIT } from '../errors.ts';
import { ago, keyValues, table } from '../format.ts';
import { mapLimited } from '../map-limited.ts';
import { readSecret } from '../secret-input.ts';

/**
 * `nebula users ...`: list, get, create, update, refresh, delete (admins only). A password or token
 * is read from standard input (--password-stdin, --token-stdin) or typed at a prompt that does not
 * echo; the API never answers one, and the CLI prints none, except the new token of `refresh`, on
 * stdout, once.
 */
const yesNo = (set: boolean) => (set ? 'set' : 'not set');

function userView(u: UserDoc): string {
  return keyValues([
    ['user', u.user_name],
    ['password', yesNo(u.password_set)],
    ['token', yesNo(u.token_set)],
    ['created', `${u.created_at} (${ago(u.created_at)})`],
    ['updated', `${u.updated_at} (${ago(u.updated_at)})`],
  ]);
}

/** The secret the command line asks for (command-line.ts allows one of the two). */
async function credentials(ctx: Ctx, user: string): Promise<{ password?: string; token?: string }> {
  if (ctx.values['password-stdin']) return { password: await readSecret(ctx.io, `password for ${user}`) };
  if (ctx.values['token-stdin']) return { token: await readSecret(ctx.io, `token for ${user}`) };
  return {};
}

export const usersCommands: Record<string, Command> = {
  async 'users list'(ctx) {
    const { users } = await ctx.nebula.users.list.query();
    if (ctx.json) {
      printJson(ctx, { users });
      return EXIT.ok;
    }
    // One read per user (a few at a time): a user deleted meanwhile is skipped.
    const docs = await mapLimited(users.sort(), 8, (name) => ctx.nebula.users.get.query({ name }).catch(() => null));
    const rows = docs.filter((u) => u !== null).map((u) => [u.user_name, yesNo(u.password_set), yesNo(u.token_set), ago(u.created_at)]);
    print(ctx, rows.length === 0 ? 'no users' : table(['USER', 'PASSWORD', 'TOKEN', 'CREATED'], rows));
    return EXIT.ok;
  },

  async 'users get'(ctx) {
    const u = await ctx.nebula.users.get.query({ name: arg(ctx, 'user') });
    if (ctx.json) printJson(ctx, u);
    else print(ctx, userView(u));
    return EXIT.ok;
  },

  async 'users create'(ctx) {
    const name = arg(ctx, 'user');
    const given = await credentials(ctx, name);
    const u = await ctx.nebula.users.create.mutate({ name, ...given });
    if (ctx.json) {
      printJson(ctx, u);
      return EXIT.ok;
    }
    const password = given.password === undefined ? 'random, not shown' : 'from stdin';
    const token = given.token === undefined ? 'random, not shown' : 'from stdin';
    print(ctx, `user ${u.user_name} created (password ${password}; token ${token})`);
    if (given.token === undefined) ctx.io.err.write(`a token for ${u.user_name}: nebula users refresh ${u.user_name}\n`);
    if (given.password === undefined) ctx.io.err.write(`a password for ${u.user_name}: nebula users update ${u.user_name} --password-stdin\n`);
    return EXIT.ok;
  },

  async 'users update'(ctx) {
    const name = arg(ctx, 'user');
    const given = await credentials(ctx, name);
    const u = await ctx.nebula.users.update.mutate({ name, ...given });
    if (ctx.json) printJson(ctx, u);
    else print(ctx, `user ${u.user_name}: ${given.password !== undefined ? 'password' : 'token'} set`);
    return EXIT.ok;
  },

  async 'users refresh'(ctx) {
    const name = arg(ctx, 'user');
    const { token } = await ctx.nebula.users.refresh.mutate({ name });
    // The token alone on stdout, so it can be piped (NEBULA_TOKEN=$(nebula users refresh ci)).
    if (ctx.json) printJson(ctx, { user_name: name, token });
    else print(ctx, token);
    ctx.io.err.write(`new token for ${name}; the old one no longer works. It is not shown again.\n`);
    return EXIT.ok;
  },

  async 'users delete'(ctx) {
    const name = arg(ctx, 'user');
    await ctx.nebula.users.delete.mutate({ name });
    if (ctx.json) printJson(ctx, { user_name: name, deleted: true });
    else print(ctx, `user ${name} deleted`);
    return EXIT.ok;
  },
};
