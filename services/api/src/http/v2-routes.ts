import { TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import { API_ERROR_STATUS, ApiError, compatZodBody, fieldErrors, RETRY_AFTER_SECONDS } from '../errors.ts';
import { isPlainObject, type JsonBody } from './body.ts';
import { queryFlag } from './query-flag.ts';
import { cronJobsRoute } from './v2-cron-jobs.ts';
import { deviceGroupsRoute, pruneAllRoute } from './v2-device-groups.ts';
import { prunesRoute } from './v2-prunes.ts';
import { reportsRoute } from './v2-reports.ts';
import { rolloutCommandRoute } from './v2-rollouts.ts';
import type { Caller, Handler, RouteMethods, V2Response } from './v2-types.ts';
import { userGroupsRoute, usersRoute } from './v2-users.ts';

export type { V2Response } from './v2-types.ts';

/**
 * The original Nebula's REST routes under /api/v2, with its exact status codes and bodies (create 200,
 * actions 202, delete 200 `{}`, 403 `{"app_exists": ...}`, 400 `{"missing_parameters": [...]}`).
 * The generic REST handler cannot answer those shapes, so this thin adapter calls the same tRPC
 * procedures (createCaller) and maps their results; it holds no logic of its own.
 *
 * Routes of ours (roll, pull, rollback, history, rollouts, hosts) are served by the generated handler; this
 * table knows them only to answer 405 for a wrong method. Except the rollout commands (v2-rollouts.ts)
 * and `?dry_run=true` of create and update (apps.dryRun.*: 200 `{"dry_run": true, "config", "plan"}`,
 * nothing written), which need the query string the generated handler does not read for a POST.
 */
const ROLLOUT_HEADER = 'x-nebula-rollout-id';

function withRollout(status: number, doc: { rollout_id: string }): V2Response {
  return { status, body: doc, headers: { [ROLLOUT_HEADER]: doc.rollout_id } };
}

/** Body checks the procedures cannot make: the name comes from the URL, not the body. */
function configBody(name: string, body: JsonBody, missing: true | string[]): { ok: true; value: Record<string, unknown> } | { ok: false; res: V2Response } {
  const bad = (errors: Record<string, string[]>) => ({ ok: false as const, res: { status: 400, body: { missing_parameters: missing, errors } } });
  if (body.kind === 'empty') return bad({ '(body)': ['a JSON object is required'] });
  if (body.kind === 'malformed') return bad({ '(body)': [body.reason] });
  if (!isPlainObject(body.value)) return bad({ '(body)': ['must be a JSON object'] });
  const { app_name, ...rest } = body.value;
  // Clients (drone-nebula, scripts that PUT back a GET) send app_name: accepted when it matches.
  if (app_name !== undefined && app_name !== name) {
    return { ok: false, res: { status: 400, body: { errors: { app_name: ['must match the app name in the URL'] } } } };
  }
  if ('name' in rest) return { ok: false, res: { status: 400, body: { errors: { name: ['unknown field'] } } } };
  if (missing === true && Object.keys(rest).length === 0) return bad({ '(body)': ['nothing to update: give at least one field'] });
  return { ok: true, value: rest };
}

const actions: Record<'stop' | 'start' | 'restart', Handler> = {
  stop: async (c, name) => withRollout(202, await c.apps.stop({ name })),
  start: async (c, name) => withRollout(202, await c.apps.start({ name })),
  restart: async (c, name) => withRollout(202, await c.apps.restart({ name })),
};

function route(segments: string[]): { methods: RouteMethods; name: string } | null {
  const [a, b, c, ...more] = segments;
  if (more.length > 0) return null;
  if (a === 'status' && b === undefined) return { name: '', methods: { GET: async (caller) => ({ status: 200, body: await caller.status.get() }) } };
  if (a === 'rollouts' && b !== undefined && c === undefined) return { name: b, methods: { GET: 'generated' } };
  if (a === 'rollouts' && b !== undefined && c !== undefined) return rolloutCommandRoute(b, c);
  if (a === 'hosts' && b === 'join_tokens') return { name: '', methods: c === undefined ? { GET: 'generated', POST: 'generated' } : { DELETE: 'generated' } };
  if (a === 'hosts' && b !== undefined && c === 'revoke') return { name: b, methods: { POST: 'generated' } };
  if (a === 'hosts' && c === undefined) return { name: b ?? '', methods: { GET: 'generated' } };
  if (a === 'reports' && b === undefined) return reportsRoute();
  if (a === 'prunes' && b === undefined) return prunesRoute();
  if (a === 'users') return usersRoute(b, c);
  if (a === 'user_groups') return userGroupsRoute(b, c);
  if (a === 'cron_jobs') return cronJobsRoute(b, c);
  if (a === 'device_groups') return deviceGroupsRoute(b, c);
  if (a === 'prune' && b === undefined) return pruneAllRoute();
  if (a !== 'apps') return null;
  if (b === undefined) return { name: '', methods: { GET: async (caller) => ({ status: 200, body: await caller.apps.list() }) } };
  if (c === undefined) {
    return {
      name: b,
      methods: {
        GET: async (caller, name) => ({ status: 200, body: await caller.apps.get({ name }) }),
        POST: async (caller, name, body, query) => {
          const dry = queryFlag(query, 'dry_run');
          if (!dry.ok) return dry.res;
          const cfg = configBody(name, body, ['docker_image']);
          if (!cfg.ok) return cfg.res;
          const input = { ...(cfg.value as { docker_image: string }), name };
          if (dry.value) return { status: 200, body: await caller.apps.dryRun.create(input) };
          return withRollout(200, await caller.apps.create(input));
        },
        DELETE: async (caller, name) => {
          const r = await caller.apps.delete({ name });
          return { status: 200, body: {}, headers: { [ROLLOUT_HEADER]: r.rollout_id } };
        },
      },
    };
  }
  if (c === 'stop' || c === 'start' || c === 'restart') return { name: b, methods: { POST: actions[c] } };
  if (c === 'update') {
    const patch: Handler = async (caller, name, body, query) => {
      const dry = queryFlag(query, 'dry_run');
      if (!dry.ok) return dry.res;
      const cfg = configBody(name, body, true);
      if (!cfg.ok) return cfg.res;
      if (dry.value) return { status: 200, body: await caller.apps.dryRun.patch({ ...cfg.value, name }) };
      return withRollout(202, await caller.apps.patch({ ...cfg.value, name }));
    };
    return {
      name: b,
      methods: {
        POST: async (caller, name, body, query) => {
          const dry = queryFlag(query, 'dry_run');
          if (!dry.ok) return dry.res;
          const cfg = configBody(name, body, ['docker_image']);
          if (!cfg.ok) return cfg.res;
          const input = { ...(cfg.value as { docker_image: string }), name };
          if (dry.value) return { status: 200, body: await caller.apps.dryRun.update(input) };
          return withRollout(202, await caller.apps.update(input));
        },
        PUT: patch,
        PATCH: patch,
      },
    };
  }
  if (c === 'roll' || c === 'pull' || c === 'rollback') return { name: b, methods: { POST: 'generated' } };
  if (c === 'history' || c === 'rollouts') return { name: b, methods: { GET: 'generated' } };
  return null;
}

/** The compat answer for a procedure's failure; null for an unexpected one (the caller answers 500). */
export function v2ErrorResponse(err: unknown, input: unknown): V2Response | null {
  if (!(err instanceof TRPCError)) return null;
  const cause = err.cause;
  if (cause instanceof ApiError) {
    const headers: Record<string, string> = cause.retryable ? { 'retry-after': String(RETRY_AFTER_SECONDS) } : {};
    return { status: API_ERROR_STATUS[cause.code], body: cause.body, headers };
  }
  if (cause instanceof ZodError) {
    return { status: 400, body: { ...compatZodBody(input, cause.issues), errors: fieldErrors(cause.issues) } };
  }
  if (err.code === 'UNAUTHORIZED') return { status: 401, body: { error: 'unauthorized' } };
  return null;
}

export type V2Match = { kind: 'handled'; response: V2Response } | { kind: 'generated' } | { kind: 'none' };

/**
 * Answers an original route; says 'generated' for ours, 'none' for an unknown path. `segments` are
 * the decoded path segments after /api/v2.
 */
export async function handleV2(
  method: string,
  segments: string[],
  body: JsonBody,
  caller: Caller,
  query: URLSearchParams = new URLSearchParams(),
): Promise<V2Match> {
  const r = route(segments);
  if (!r) return { kind: 'none' };
  const h = r.methods[method === 'HEAD' ? 'GET' : method];
  if (h === undefined) {
    return {
      kind: 'handled',
      response: { status: 405, body: { error: 'method not allowed', allowed: Object.keys(r.methods) }, headers: { allow: Object.keys(r.methods).join(', ') } },
    };
  }
  if (h === 'generated') return { kind: 'generated' };
  try {
    return { kind: 'handled', response: await h(caller, r.name, body, query) };
  } catch (err) {
    const input = body.kind === 'json' ? body.value : undefined;
    const mapped = v2ErrorResponse(err, input);
    if (mapped) return { kind: 'handled', response: mapped };
    throw err;
  }
}
