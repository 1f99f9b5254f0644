import type { IncomingMessage, ServerResponse } from 'node:http';
import { createOpenApiNodeHttpHandler } from 'trpc-to-openapi';
import { RETRY_AFTER_SECONDS } from '../errors.ts';
import { appRouter } from '../routers/_app.ts';
import type { Context, Meta } from '../trpc.ts';
import { isPlainObject, parseJson } from './body.ts';
import { SAFE_METHODS } from './cross-site.ts';
import { sendJson } from './respond.ts';
import type { OnProcedureError } from './trpc-route.ts';
import { handleV2 } from './v2-routes.ts';

function procedureMeta(path: string | undefined): Meta | undefined {
  if (!path) return undefined;
  const procs = appRouter._def.procedures as unknown as Record<string, { _def: { meta?: Meta } }>;
  return procs[path]?._def.meta;
}

/**
 * `/api/v2/...`: the original's routes first (v2-routes.ts, exact status codes and bodies), then the
 * routes generated from the procedures' meta (trpc-to-openapi), to which the parsed body is handed.
 */
export function createRestRoute(contextFor: (req: IncomingMessage) => Context, onError: OnProcedureError) {
  const generated = createOpenApiNodeHttpHandler({
    router: appRouter,
    createContext: ({ req }: { req: IncomingMessage }) => contextFor(req),
    onError,
    responseMeta: ({ paths, errors, data }) => {
      if (errors.length > 0) return errors.some((e) => e.code === 'SERVICE_UNAVAILABLE') ? { headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } } : {};
      const meta = procedureMeta(paths?.[0]);
      const first = data[0] as { rollout_id?: unknown } | undefined;
      const headers: Record<string, string> = {};
      if (typeof first?.rollout_id === 'string') headers['x-nebula-rollout-id'] = first.rollout_id;
      return { status: meta?.successStatus ?? 200, headers };
    },
  });

  return async (req: IncomingMessage, res: ServerResponse, path: string, raw: string): Promise<void> => {
    const method = req.method ?? 'GET';
    let segments: string[];
    try {
      segments = path
        .slice('/api/v2/'.length)
        .split('/')
        .filter((s) => s !== '')
        .map((s) => decodeURIComponent(s));
    } catch {
      return sendJson(res, 400, { errors: { name: ['malformed percent-encoding in the path'] } });
    }
    const json = parseJson(raw);
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const match = await handleV2(method, segments, json, appRouter.createCaller(contextFor(req)), query);
    if (match.kind === 'handled') return sendJson(res, match.response.status, match.response.body, match.response.headers);
    if (match.kind === 'none') return sendJson(res, 404, { error: 'not found' });
    // A generated route: hand over the parsed body (the library would re-read the stream).
    if (json.kind === 'malformed') return sendJson(res, 400, { errors: { '(body)': [json.reason] } });
    if (json.kind === 'json' && !isPlainObject(json.value)) return sendJson(res, 400, { errors: { '(body)': ['must be a JSON object'] } });
    if (json.kind === 'json' && isPlainObject(json.value) && ('name' in json.value || 'id' in json.value)) {
      return sendJson(res, 400, { errors: { ['name' in json.value ? 'name' : 'id']: ['unknown field (it comes from the URL)'] } });
    }
    const r = req as IncomingMessage & { body?: unknown };
    r.body = json.kind === 'json' ? json.value : undefined;
    // The cross-site stage let only application/json changes through (any case, any parameters);
    // the library wants it spelled exactly.
    if (!SAFE_METHODS.has(method)) req.headers['content-type'] = 'application/json';
    await generated(r, res);
  };
}
