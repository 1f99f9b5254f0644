import { userCredentialsSchema, userGroupPatchSchema, userGroupSchema } from '@nebula/contracts';
import type { z } from 'zod';
import { fieldErrors } from '../errors.ts';
import { isPlainObject, type JsonBody } from './body.ts';
import type { Caller, RouteMethods, V2Response } from './v2-types.ts';

/**
 * The original's `/api/v2/users` and `/api/v2/user_groups` routes, with its codes and bodies:
 * create 200 with the document, updates (PUT/PATCH `.../update`) 200, delete 200 `{}`, refresh 200
 * `{"token": ...}`, a missing user 403 `{"user_exists": false}` (`{"user_name": false}` on update and
 * refresh), a bad body 400 `{"missing_parameters": true, "errors": {...}}`.
 *
 * Fixed, not copied: an update of a missing group is 403 `{"user_group_exists": false}` (the
 * original answered 200 `null`), and no answer carries a hash.
 */
function parsed<S extends z.ZodType>(
  schema: S,
  body: JsonBody,
  empty: 'allowed' | 'refused',
): { ok: true; value: z.output<S> } | { ok: false; res: V2Response } {
  const bad = (errors: Record<string, string[]>): { ok: false; res: V2Response } => ({
    ok: false,
    res: { status: 400, body: { missing_parameters: true, errors } },
  });
  if (body.kind === 'malformed') return bad({ '(body)': [body.reason] });
  const value = body.kind === 'empty' ? {} : body.value;
  if (!isPlainObject(value)) return bad({ '(body)': ['must be a JSON object'] });
  if (empty === 'refused' && Object.keys(value).length === 0) return bad({ '(body)': ['nothing to update: give at least one field'] });
  const r = schema.safeParse(value);
  return r.success ? { ok: true, value: r.data } : bad(fieldErrors(r.error.issues));
}

export function usersRoute(b: string | undefined, c: string | undefined): { methods: RouteMethods; name: string } | null {
  if (b === undefined) return { name: '', methods: { GET: async (caller: Caller) => ({ status: 200, body: await caller.users.list() }) } };
  if (c === undefined) {
    return {
      name: b,
      methods: {
        GET: async (caller, name) => ({ status: 200, body: await caller.users.get({ name }) }),
        POST: async (caller, name, body) => {
          const p = parsed(userCredentialsSchema, body, 'allowed');
          return p.ok ? { status: 200, body: await caller.users.create({ ...p.value, name }) } : p.res;
        },
        DELETE: async (caller, name) => ({ status: 200, body: await caller.users.delete({ name }) }),
      },
    };
  }
  if (c === 'update') {
    const update = async (caller: Caller, name: string, body: JsonBody): Promise<V2Response> => {
      const p = parsed(userCredentialsSchema, body, 'refused');
      return p.ok ? { status: 200, body: await caller.users.update({ ...p.value, name }) } : p.res;
    };
    return { name: b, methods: { PUT: update, PATCH: update } };
  }
  if (c === 'refresh') return { name: b, methods: { POST: async (caller, name) => ({ status: 200, body: await caller.users.refresh({ name }) }) } };
  return null;
}

export function userGroupsRoute(b: string | undefined, c: string | undefined): { methods: RouteMethods; name: string } | null {
  if (b === undefined) return { name: '', methods: { GET: async (caller: Caller) => ({ status: 200, body: await caller.userGroups.list() }) } };
  if (c === undefined) {
    return {
      name: b,
      methods: {
        GET: async (caller, name) => ({ status: 200, body: await caller.userGroups.get({ name }) }),
        POST: async (caller, name, body) => {
          const p = parsed(userGroupSchema, body, 'allowed');
          return p.ok ? { status: 200, body: await caller.userGroups.create({ ...p.value, name }) } : p.res;
        },
        DELETE: async (caller, name) => ({ status: 200, body: await caller.userGroups.delete({ name }) }),
      },
    };
  }
  if (c === 'update') {
    const update = async (caller: Caller, name: string, body: JsonBody): Promise<V2Response> => {
      const p = parsed(userGroupPatchSchema, body, 'refused');
      return p.ok ? { status: 200, body: await caller.userGroups.update({ ...p.value, name }) } : p.res;
    };
    return { name: b, methods: { PUT: update, PATCH: update } };
  }
  return null;
}
