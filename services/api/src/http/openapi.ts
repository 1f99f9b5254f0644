import { generateOpenApiDocument, type OpenAPIObject } from 'trpc-to-openapi';
import { appRouter } from '../routers/_app.ts';

let cached: OpenAPIObject | null = null;

/**
 * The OpenAPI 3.1 document of the REST routes, generated from the procedures' meta. PUT on
 * /apps/{name}/update is the same operation as PATCH (the original accepts both); a procedure has one
 * method, so the document gets a copy.
 */
export function openApiDocument(): OpenAPIObject {
  if (cached) return cached;
  const doc = generateOpenApiDocument(appRouter, {
    title: 'Nebula API',
    version: '2',
    description: 'Apps, revisions and rollouts. Paths under /api/v2 are compatible with the original Nebula manager; tRPC is served under /trpc.',
    baseUrl: '/',
    securitySchemes: {
      basic: { type: 'http', scheme: 'basic' },
      bearer: { type: 'http', scheme: 'bearer' },
    },
  });
  const update = doc.paths?.['/api/v2/apps/{name}/update'];
  if (update?.patch) update.put = { ...update.patch, operationId: 'apps-patch-put' };
  cached = doc;
  return doc;
}
