import { ROLLOUT_COMMANDS, type RolloutCommand } from '@nebula/db';
import { isPlainObject, type JsonBody } from './body.ts';
import { queryFlag } from './query-flag.ts';
import type { Caller, RouteMethods, V2Response } from './v2-types.ts';

/**
 * `POST /api/v2/rollouts/{id}/pause|resume|promote|abort|retry` (promote: `?full=true`, or
 * `{"full": true}` in the body, for every remaining wave). Served here rather than by the generated
 * handler, which reads no query parameters of a POST. The procedures (routers/rollout-commands.ts)
 * check the input strictly (a bad id or an unknown field is 400 naming it) and answer 200 with the
 * progress, 403 `{"rollout_exists": false}`, or 409 `{"error", "state", "command"}`.
 */
function isCommand(c: string): c is RolloutCommand {
  return (ROLLOUT_COMMANDS as readonly string[]).includes(c);
}

function input(
  id: string,
  command: RolloutCommand,
  body: JsonBody,
  query: URLSearchParams,
): { ok: true; value: Record<string, unknown> } | { ok: false; res: V2Response } {
  if (body.kind === 'malformed') return { ok: false, res: { status: 400, body: { errors: { '(body)': [body.reason] } } } };
  const fields = body.kind === 'empty' ? {} : body.value;
  if (!isPlainObject(fields)) return { ok: false, res: { status: 400, body: { errors: { '(body)': ['must be a JSON object'] } } } };
  if ('id' in fields) return { ok: false, res: { status: 400, body: { errors: { id: ['unknown field (it comes from the URL)'] } } } };
  if (!query.has('full')) return { ok: true, value: { ...fields, id } };
  if (command !== 'promote') return { ok: false, res: { status: 400, body: { errors: { full: ['only promote takes full'] } } } };
  const full = queryFlag(query, 'full');
  return full.ok ? { ok: true, value: { ...fields, id, full: full.value } } : full;
}

async function send(caller: Caller, command: RolloutCommand, value: Record<string, unknown>): Promise<V2Response> {
  // The procedures check `value` (strict objects): the casts only get it past the compiler.
  const progress = command === 'promote' ? await caller.rollouts.promote(value as { id: string }) : await caller.rollouts[command](value as { id: string });
  return { status: 200, body: progress };
}

export function rolloutCommandRoute(id: string, c: string): { methods: RouteMethods; name: string } | null {
  if (!isCommand(c)) return null;
  return {
    name: id,
    methods: {
      POST: async (caller, name, body, query) => {
        const i = input(name, c, body, query);
        return i.ok ? send(caller, c, i.value) : i.res;
      },
    },
  };
}
