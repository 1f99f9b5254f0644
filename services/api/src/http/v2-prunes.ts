import { PRUNE_LIST_LIMIT, parsePruneQuery, pruneListSchema } from '@nebula/contracts';
import type { OpenAPIObject } from 'trpc-to-openapi';
import { z } from 'zod';
import type { RouteMethods } from './v2-types.ts';

/**
 * `GET /api/v2/prunes`: the query string parsed (parsePruneQuery, pure) and handed to `prunes.list`.
 * A bad parameter is 400 `{"errors": {"<parameter>": [...]}}`; a caller without the right 403
 * `{"access_allowed": false}`.
 */
export function prunesRoute(): { methods: RouteMethods; name: string } {
  return {
    name: '',
    methods: {
      GET: async (caller, _name, _body, query) => {
        const q = parsePruneQuery(query);
        if (!q.ok) return { status: 400, body: { errors: q.errors } };
        return { status: 200, body: await caller.prunes.list(q.value) };
      },
    },
  };
}

type Operation = NonNullable<NonNullable<OpenAPIObject['paths']>[string]['get']>;

/** Its OpenAPI operation (no procedure meta describes a compat route), its answer from the shared schema. */
export function prunesOperation(): Operation {
  const q = (name: string, description: string, schema: Record<string, unknown>) => ({ name, in: 'query' as const, required: false, description, schema });
  return {
    operationId: 'prunes-list',
    tags: ['prunes'],
    summary: 'What each host freed with image prunes, newest prune first; bytes_freed is the total of every matching report',
    parameters: [
      q('device_group', 'only this device group', { type: 'string' }),
      q('prune_id', 'only this prune of the group (its prune_id)', { type: 'integer', minimum: 1 }),
      q('host', 'only this host', { type: 'string' }),
      q('limit', `reports listed at most (default ${PRUNE_LIST_LIMIT.default}, at most ${PRUNE_LIST_LIMIT.max})`, {
        type: 'integer',
        minimum: 1,
        maximum: PRUNE_LIST_LIMIT.max,
      }),
    ],
    responses: {
      '200': {
        description: '`{"prunes": [{host, device_group, prune_id, bytes_freed, images_removed, error, reported_at}], "bytes_freed": <total>}`',
        content: { 'application/json': { schema: z.toJSONSchema(pruneListSchema, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown> } },
      },
      '400': { description: 'a bad, unknown or repeated parameter: `{"errors": {"<parameter>": [...]}}`' },
      '401': { description: 'no login' },
      '403': { description: '`{"access_allowed": false}`: neither pruning_allowed (or admin) nor "ro" on the device group' },
    },
  } as Operation;
}
