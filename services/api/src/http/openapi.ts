import { REPORT_PAGE_SIZE, REPORT_TIME_FILTERS, reportPageSchema } from '@nebula/contracts';
import { generateOpenApiDocument, type OpenAPIObject } from 'trpc-to-openapi';
import { z } from 'zod';
import { appRouter } from '../routers/_app.ts';
import { prunesOperation } from './v2-prunes.ts';

let cached: OpenAPIObject | null = null;

type Operation = NonNullable<NonNullable<OpenAPIObject['paths']>[string]['post']>;

const DRY_RUN =
  'true: validate and plan the change without making it; 200 `{"dry_run": true, "config": <the config it would store>, "plan": {"members": N, "waves": [{"wave", "percent", "hosts": [...]}]}}`, nothing written';

function addQueryFlag(op: Operation, name: string, description: string): void {
  op.parameters = [...(op.parameters ?? []), { name, in: 'query', required: false, description, schema: { type: 'boolean', default: false } }];
}

/**
 * `GET /api/v2/reports` is served by the compat adapter (v2-reports.ts), which reads the original's
 * query string (`True`/`False`, epoch seconds, a hex `last_id`): no procedure meta describes it, so it
 * is written here, its answer from the shared schema.
 */
function reportsOperation(): Operation {
  const q = (name: string, description: string, schema: Record<string, unknown>) => ({ name, in: 'query' as const, required: false, description, schema });
  return {
    operationId: 'reports-list',
    tags: ['reports'],
    summary: 'Host usage reports, oldest first, paged by id (the original shape)',
    parameters: [
      q('page_size', `reports per page (default ${REPORT_PAGE_SIZE.default}, at most ${REPORT_PAGE_SIZE.max})`, {
        type: 'integer',
        minimum: 1,
        maximum: REPORT_PAGE_SIZE.max,
      }),
      q('last_id', 'the `last_id.$oid` of the previous page: only reports after it', { type: 'string', pattern: '^[0-9a-fA-F]{24}$' }),
      q('hostname', 'only this host', { type: 'string' }),
      q('device_group', 'only this device group', { type: 'string' }),
      q('report_creation_time', 'epoch seconds, compared with report_creation_time_filter', { type: 'integer', minimum: 0 }),
      q('report_creation_time_filter', 'how report_creation_time compares (default eq)', { type: 'string', enum: [...REPORT_TIME_FILTERS] }),
      q('updated', 'only reports after (True) or without (False) a change of the running revisions', {
        type: 'string',
        enum: ['True', 'False', 'true', 'false'],
      }),
    ],
    responses: {
      '200': {
        description: '`{"data": [...], "last_id": {"$oid": ...}}`; an empty page is `{"data": null, "last_id": null}`',
        content: { 'application/json': { schema: z.toJSONSchema(reportPageSchema, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown> } },
      },
      '400': { description: 'a bad, unknown or repeated parameter: `{"errors": {"<parameter>": [...]}}`' },
      '401': { description: 'no login' },
    },
  } as Operation;
}

/**
 * The OpenAPI 3.1 document of the REST routes, generated from the procedures' meta. PUT on
 * /apps/{name}/update (and /cron_jobs/{name}/update) is the same operation as PATCH (the original accepts both); a procedure has one
 * method, so the document gets a copy.
 */
export function openApiDocument(): OpenAPIObject {
  if (cached) return cached;
  const doc = generateOpenApiDocument(appRouter, {
    title: 'Nebula API',
    version: '2',
    description:
      'Apps, revisions, rollouts, device groups and cron jobs. Paths under /api/v2 are compatible with the original Nebula manager; tRPC is served under /trpc.',
    baseUrl: '/',
    securitySchemes: {
      basic: { type: 'http', scheme: 'basic' },
      bearer: { type: 'http', scheme: 'bearer' },
    },
  });
  const create = doc.paths?.['/api/v2/apps/{name}'];
  const update = doc.paths?.['/api/v2/apps/{name}/update'];
  // Query parameters the compat routes read (v2-routes.ts) and the generated document cannot know.
  for (const op of [create?.post, update?.post, update?.patch]) if (op) addQueryFlag(op, 'dry_run', DRY_RUN);
  const promote = doc.paths?.['/api/v2/rollouts/{id}/promote']?.post;
  if (promote) addQueryFlag(promote, 'full', 'true: start every remaining wave now (as `"full": true` in the body)');
  if (update?.patch) update.put = { ...update.patch, operationId: 'apps-patch-put' };
  if (doc.paths) doc.paths['/api/v2/reports'] = { get: reportsOperation() };
  if (doc.paths) doc.paths['/api/v2/prunes'] = { get: prunesOperation() };
  const cronUpdate = doc.paths?.['/api/v2/cron_jobs/{name}/update'];
  if (cronUpdate?.patch) cronUpdate.put = { ...cronUpdate.patch, operationId: 'cronJobs-patch-put' };
  const groupUpdate = doc.paths?.['/api/v2/device_groups/{name}/update'];
  if (groupUpdate?.patch) groupUpdate.put = { ...groupUpdate.patch, operationId: 'deviceGroups-patch-put' };
  cached = doc;
  return doc;
}
