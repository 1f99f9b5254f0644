import { generateOpenApiDocument, type OpenAPIObject } from 'trpc-to-openapi';
import { appRouter } from '../routers/_app.ts';

let cached: OpenAPIObject | null = null;

type Operation = NonNullable<NonNullable<OpenAPIObject['paths']>[string]['post']>;

const DRY_RUN =
  'true: validate and plan the change without making it; 200 `{"dry_run": true, "config": <the config it would store>, "plan": {"members": N, "waves": [{"wave", "percent", "hosts": [...]}]}}`, nothing written';

function addQueryFlag(op: Operation, name: string, description: string): void {
  op.parameters = [...(op.parameters ?? []), { name, in: 'query', required: false, description, schema: { type: 'boolean', default: false } }];
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
    description: 'Apps, revisions, rollouts and cron jobs. Paths under /api/v2 are compatible with the original Nebula manager; tRPC is served under /trpc.',
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
  const cronUpdate = doc.paths?.['/api/v2/cron_jobs/{name}/update'];
  if (cronUpdate?.patch) cronUpdate.put = { ...cronUpdate.patch, operationId: 'cronJobs-patch-put' };
  cached = doc;
  return doc;
}
