import { isPlainObject, type JsonBody } from './body.ts';
import type { Caller, Handler, RouteMethods, V2Response } from './v2-types.ts';

/**
 * The original's `/api/v2/device_groups` routes and `POST /api/v2/prune`, with its codes and bodies:
 * list `{"device_groups": [...]}`, create 200 with the document, updates (POST replaces both lists,
 * PUT/PATCH the lists given) 202 with it (device_group_id + 1), delete 200 `{}`, `/info` 200, prune
 * 202 with the document (prune_id + 1), `/prune` 202 `{"prune_ids": {...}}`. Refusals: a missing
 * group 403 `{"device_group_exists": false}` (the original answered `{"app_exists": false}` on a
 * POST update and a prune of a missing group: fixed), an existing one 403 `{"device_group_exists":
 * true}`, a list that is not one 400 `{"cron_jobs_is_list": false}` / `{"apps_is_list": false}`, a
 * named job or app missing 403 `{"cron_job_exists": false}` / `{"app_exists": false}` (jobs checked
 * first), a body that is not a JSON object (or an empty update) 400 `{"missing_parameters": true}`.
 * Answers to changes carry ours too: `rollout_id` (also in the `x-nebula-rollout-id` header).
 *
 * Prunes read no body: the SDK's bodyless POST (`Content-Type: application/json`, nothing sent) works.
 */
type Parsed = { ok: true; value: Record<string, unknown> } | { ok: false; res: V2Response };

const ROLLOUT_HEADER = 'x-nebula-rollout-id';

function withRollout(status: number, doc: { rollout_id: string }, body: unknown = doc): V2Response {
  return { status, body, headers: { [ROLLOUT_HEADER]: doc.rollout_id } };
}

function bad(errors: Record<string, string[]>): Parsed {
  return { ok: false, res: { status: 400, body: { missing_parameters: true, errors } } };
}

/** `empty`: what an empty body stands for (create: an empty group), or refused (an update must say what). */
function listsBody(name: string, body: JsonBody, empty: 'empty group' | 'refused'): Parsed {
  if (body.kind === 'malformed') return bad({ '(body)': [body.reason] });
  if (body.kind === 'empty' && empty === 'refused') return bad({ '(body)': ['a JSON object is required'] });
  const value = body.kind === 'empty' ? {} : body.value;
  if (!isPlainObject(value)) return bad({ '(body)': ['must be a JSON object'] });
  const { device_group, ...rest } = value;
  // Scripts that send back a GET's document carry device_group (and the counters): accepted when it matches.
  if (device_group !== undefined && device_group !== name) {
    return { ok: false, res: { status: 400, body: { errors: { device_group: ['must match the device group name in the URL'] } } } };
  }
  for (const k of ['device_group_id', 'prune_id', 'incarnation', 'seq', 'created_at', 'updated_at', 'rollout_id', 'expected_hosts']) delete rest[k];
  if ('name' in rest) return { ok: false, res: { status: 400, body: { errors: { name: ['unknown field'] } } } };
  if (rest.cron_jobs !== undefined && !Array.isArray(rest.cron_jobs)) {
    return { ok: false, res: { status: 400, body: { cron_jobs_is_list: false, errors: { cron_jobs: ['must be a list of cron job names'] } } } };
  }
  if (rest.apps !== undefined && !Array.isArray(rest.apps)) {
    return { ok: false, res: { status: 400, body: { apps_is_list: false, errors: { apps: ['must be a list of app names'] } } } };
  }
  if (empty === 'refused' && Object.keys(rest).length === 0) return bad({ '(body)': ['nothing to update: give apps or cron_jobs'] });
  return { ok: true, value: rest };
}

export function pruneAllRoute(): { methods: RouteMethods; name: string } {
  return {
    name: '',
    methods: { POST: async (caller: Caller) => ({ status: 202, body: await caller.deviceGroups.pruneAll() }) },
  };
}

export function deviceGroupsRoute(b: string | undefined, c: string | undefined): { methods: RouteMethods; name: string } | null {
  if (b === undefined) return { name: '', methods: { GET: async (caller: Caller) => ({ status: 200, body: await caller.deviceGroups.list() }) } };
  if (c === undefined) {
    return {
      name: b,
      methods: {
        GET: async (caller, name) => ({ status: 200, body: await caller.deviceGroups.get({ name }) }),
        POST: async (caller, name, body) => {
          const p = listsBody(name, body, 'empty group');
          return p.ok ? withRollout(200, await caller.deviceGroups.create({ ...p.value, name })) : p.res;
        },
        DELETE: async (caller, name) => {
          const r = await caller.deviceGroups.delete({ name });
          return withRollout(200, r, {});
        },
      },
    };
  }
  if (c === 'update') {
    const patch: Handler = async (caller, name, body) => {
      const p = listsBody(name, body, 'refused');
      return p.ok ? withRollout(202, await caller.deviceGroups.patch({ ...p.value, name })) : p.res;
    };
    return {
      name: b,
      methods: {
        POST: async (caller, name, body) => {
          const p = listsBody(name, body, 'refused');
          return p.ok ? withRollout(202, await caller.deviceGroups.update({ ...p.value, name })) : p.res;
        },
        PUT: patch,
        PATCH: patch,
      },
    };
  }
  if (c === 'info') return { name: b, methods: { GET: async (caller, name) => ({ status: 200, body: await caller.deviceGroups.info({ name }) }) } };
  if (c === 'prune') return { name: b, methods: { POST: async (caller, name) => withRollout(202, await caller.deviceGroups.prune({ name })) } };
  return null;
}
