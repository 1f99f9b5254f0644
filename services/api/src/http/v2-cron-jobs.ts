import { CRON_JOB_REQUIRED } from '@nebula/contracts';
import { isPlainObject, type JsonBody } from './body.ts';
import type { Caller, Handler, RouteMethods, V2Response } from './v2-types.ts';

/**
 * The original's `/api/v2/cron_jobs` routes, with its codes and bodies: create 200 with the document,
 * updates 202 with it (cron_job_id + 1), delete 200 `{}`, a missing job 403 `{"cron_job_exists":
 * false}`, an existing one 403 `{"cron_job_exists": true}`, a body without image or schedule 400
 * `{"missing_parameters": [...]}` (also for a body that is not a JSON object), an empty PUT/PATCH 400
 * `{"missing_parameters": true}`, a bad schedule 400 `{"schedule_valid": false}`; every 400 also
 * carries `errors` per field. Ours: `GET .../runs` (`?limit=N`).
 *
 * The checks here are of the body's shape only; the procedures (routers/cron-jobs.ts) validate the
 * fields, and v2ErrorResponse turns their refusals into these bodies.
 */
type Parsed = { ok: true; value: Record<string, unknown> } | { ok: false; res: V2Response };

function bad(missing: true | string[], errors: Record<string, string[]>): Parsed {
  return { ok: false, res: { status: 400, body: { missing_parameters: missing, errors } } };
}

/** `full`: POST create or update, which need the image and the schedule; otherwise a PUT/PATCH, which needs a field. */
function configBody(name: string, body: JsonBody, full: boolean): Parsed {
  const all = [...CRON_JOB_REQUIRED];
  if (body.kind === 'malformed') return bad(full ? all : true, { '(body)': [body.reason] });
  if (body.kind === 'empty') return bad(full ? all : true, { '(body)': ['a JSON object is required'] });
  if (!isPlainObject(body.value)) return bad(full ? all : true, { '(body)': ['must be a JSON object'] });
  const { cron_job_name, ...rest } = body.value;
  // Clients (drone-nebula, scripts that PUT back a GET) send cron_job_name: accepted when it matches.
  if (cron_job_name !== undefined && cron_job_name !== name) {
    return { ok: false, res: { status: 400, body: { errors: { cron_job_name: ['must match the cron job name in the URL'] } } } };
  }
  if ('name' in rest) return { ok: false, res: { status: 400, body: { errors: { name: ['unknown field'] } } } };
  if (full) {
    const missing = all.filter((f) => rest[f] === undefined);
    if (missing.length > 0) return bad(missing, Object.fromEntries(missing.map((f) => [f, ['required']])));
  } else if (Object.keys(rest).length === 0) {
    return bad(true, { '(body)': ['nothing to update: give at least one field'] });
  }
  return { ok: true, value: rest };
}

function limitOf(query: URLSearchParams): { ok: true; value: number | undefined } | { ok: false; res: V2Response } {
  const values = query.getAll('limit');
  if (values.length === 0) return { ok: true, value: undefined };
  const [only, ...more] = values;
  if (more.length === 0 && only !== undefined && /^[0-9]{1,6}$/.test(only)) return { ok: true, value: Number(only) };
  return { ok: false, res: { status: 400, body: { errors: { limit: ['must be a whole number, once'] } } } };
}

export function cronJobsRoute(b: string | undefined, c: string | undefined): { methods: RouteMethods; name: string } | null {
  if (b === undefined) return { name: '', methods: { GET: async (caller: Caller) => ({ status: 200, body: await caller.cronJobs.list() }) } };
  if (c === undefined) {
    return {
      name: b,
      methods: {
        GET: async (caller, name) => ({ status: 200, body: await caller.cronJobs.get({ name }) }),
        POST: async (caller, name, body) => {
          const p = configBody(name, body, true);
          if (!p.ok) return p.res;
          return { status: 200, body: await caller.cronJobs.create({ ...(p.value as { docker_image: string; schedule: string }), name }) };
        },
        DELETE: async (caller, name) => ({ status: 200, body: await caller.cronJobs.delete({ name }) }),
      },
    };
  }
  if (c === 'update') {
    const patch: Handler = async (caller, name, body) => {
      const p = configBody(name, body, false);
      return p.ok ? { status: 202, body: await caller.cronJobs.patch({ ...p.value, name }) } : p.res;
    };
    return {
      name: b,
      methods: {
        POST: async (caller, name, body) => {
          const p = configBody(name, body, true);
          if (!p.ok) return p.res;
          return { status: 202, body: await caller.cronJobs.update({ ...(p.value as { docker_image: string; schedule: string }), name }) };
        },
        PUT: patch,
        PATCH: patch,
      },
    };
  }
  if (c === 'runs') {
    return {
      name: b,
      methods: {
        GET: async (caller, name, _body, query) => {
          const limit = limitOf(query);
          if (!limit.ok) return limit.res;
          return { status: 200, body: await caller.cronJobs.runs({ name, ...(limit.value === undefined ? {} : { limit: limit.value }) }) };
        },
      },
    };
  }
  return null;
}
