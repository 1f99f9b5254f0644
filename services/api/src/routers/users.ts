import {
  groupNameSchema,
  userCredentialsSchema,
  userDocSchema,
  userGroupDocSchema,
  userGroupPatchSchema,
  userGroupSchema,
  userNameSchema,
} from '@nebula/contracts';
import { z } from 'zod';
import { UserGroupNotFoundError, UserNotFoundError } from '../access/errors.ts';
import { hashPassword, hashToken, newSecret } from '../access/secrets.ts';
import { reservedUserNames } from '../auth.ts';
import { createGroup, createUser, deleteGroup, deleteUser, getGroup, getUser, listGroupNames, listUserNames, patchGroup, updateUser } from '../db/users.ts';
import { InvalidQueryError } from '../errors.ts';
import { adminProcedure, type Context, router } from '../trpc.ts';

/**
 * Users and user groups, admins only (as in the original). REST paths are the original's under
 * /api/v2 (http/v2-users.ts gives its status codes and bodies). No answer carries a password, a token
 * or a hash of one, except `refresh`, which makes a new token and shows it this once.
 */
const userName = z.strictObject({ name: userNameSchema });
const groupName = z.strictObject({ name: groupNameSchema });
const deleted = z.object({});

/** Every change to users or groups: remembered credentials and rights are dropped at once (this replica). */
function changed<T>(ctx: Context, value: T): T {
  ctx.auth?.forget();
  return value;
}

const usersRouter = router({
  list: adminProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/users', tags: ['users'], summary: 'User names' } })
    .input(z.void())
    .output(z.object({ users: z.array(z.string()) }))
    .query(async ({ ctx }) => ({ users: await listUserNames(ctx.db) })),

  get: adminProcedure
    .meta({
      openapi: { method: 'GET', path: '/api/v2/users/{name}', tags: ['users'], summary: 'One user (whether a password and a token are set; never them)' },
    })
    .input(userName)
    .output(userDocSchema)
    .query(async ({ ctx, input }) => {
      const u = await getUser(ctx.db, input.name);
      if (!u) throw new UserNotFoundError(input.name);
      return u;
    }),

  create: adminProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/users/{name}',
        tags: ['users'],
        summary: 'A user with a password and/or a token (a missing one is made at random; use refresh to get a token)',
        errorResponses: { 403: 'exists already: {"user_exists": true}' },
      },
    })
    .input(userName.extend(userCredentialsSchema.shape))
    .output(userDocSchema)
    .mutation(async ({ ctx, input }) => {
      if (ctx.auth && reservedUserNames(ctx.auth.settings).includes(input.name)) {
        throw new InvalidQueryError('name', `"${input.name}" is the local admin's name: choose another`);
      }
      const password_hash = await hashPassword(input.password ?? newSecret());
      const token_hash = hashToken(input.token ?? newSecret());
      return changed(ctx, await createUser(ctx.db, input.name, { password_hash, token_hash }));
    }),

  update: adminProcedure
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/api/v2/users/{name}/update',
        tags: ['users'],
        summary: "Sets a user's password and/or token (PUT does the same)",
        errorResponses: { 403: 'no such user: {"user_name": false}' },
      },
    })
    .input(userName.extend(userCredentialsSchema.shape).refine((v) => v.password !== undefined || v.token !== undefined, 'give a password and/or a token'))
    .output(userDocSchema)
    .mutation(async ({ ctx, input }) => {
      const hashes = {
        ...(input.password === undefined ? {} : { password_hash: await hashPassword(input.password) }),
        ...(input.token === undefined ? {} : { token_hash: hashToken(input.token) }),
      };
      return changed(ctx, await updateUser(ctx.db, input.name, hashes));
    }),

  refresh: adminProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/users/{name}/refresh',
        tags: ['users'],
        summary: 'A new random token for the user, shown this once (the old one stops working)',
        errorResponses: { 403: 'no such user: {"user_name": false}' },
      },
    })
    .input(userName)
    .output(z.object({ token: z.string() }))
    .mutation(async ({ ctx, input }) => {
      const token = newSecret();
      await updateUser(ctx.db, input.name, { token_hash: hashToken(token) });
      return changed(ctx, { token });
    }),

  delete: adminProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/api/v2/users/{name}',
        tags: ['users'],
        summary: 'Deletes a user (and takes it out of every group)',
        errorResponses: { 403: '{"user_exists": false}' },
      },
    })
    .input(userName)
    .output(deleted)
    .mutation(async ({ ctx, input }) => {
      await deleteUser(ctx.db, input.name);
      return changed(ctx, {});
    }),
});

const userGroupsRouter = router({
  list: adminProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/user_groups', tags: ['users'], summary: 'User group names' } })
    .input(z.void())
    .output(z.object({ user_groups: z.array(z.string()) }))
    .query(async ({ ctx }) => ({ user_groups: await listGroupNames(ctx.db) })),

  get: adminProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/user_groups/{name}',
        tags: ['users'],
        summary: 'One user group',
        errorResponses: { 403: '{"user_group_exists": false}' },
      },
    })
    .input(groupName)
    .output(userGroupDocSchema)
    .query(async ({ ctx, input }) => {
      const g = await getGroup(ctx.db, input.name);
      if (!g) throw new UserGroupNotFoundError(input.name);
      return g;
    }),

  create: adminProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/user_groups/{name}',
        tags: ['users'],
        summary: 'A user group: members, per-app "ro"/"rw", admin, pruning_allowed, privileged_allowed',
        errorResponses: { 403: 'exists already: {"user_group_exists": true}' },
      },
    })
    .input(groupName.extend(userGroupSchema.shape))
    .output(userGroupDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...group } = input;
      return changed(ctx, await createGroup(ctx.db, name, group));
    }),

  update: adminProcedure
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/api/v2/user_groups/{name}/update',
        tags: ['users'],
        summary: 'Sets the given fields of a user group (a map given replaces that map; PUT does the same)',
        errorResponses: { 403: '{"user_group_exists": false}' },
      },
    })
    .input(groupName.extend(userGroupPatchSchema.shape).refine((v) => Object.keys(v).length > 1, 'nothing to update: give at least one field'))
    .output(userGroupDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...patch } = input;
      return changed(ctx, await patchGroup(ctx.db, name, patch));
    }),

  delete: adminProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/api/v2/user_groups/{name}',
        tags: ['users'],
        summary: 'Deletes a user group',
        errorResponses: { 403: '{"user_group_exists": false}' },
      },
    })
    .input(groupName)
    .output(deleted)
    .mutation(async ({ ctx, input }) => {
      await deleteGroup(ctx.db, input.name);
      return changed(ctx, {});
    }),
});

export { userGroupsRouter, usersRouter };
