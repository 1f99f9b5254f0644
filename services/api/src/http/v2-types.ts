import type { appRouter } from '../routers/_app.ts';
import type { JsonBody } from './body.ts';

/** The shapes the /api/v2 adapters (v2-routes.ts, v2-users.ts) share. */
export type Caller = ReturnType<typeof appRouter.createCaller>;

export interface V2Response {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** `query`: the request's query parameters (`?dry_run=true`, `?full=true`). */
export type Handler = (caller: Caller, name: string, body: JsonBody, query: URLSearchParams) => Promise<V2Response>;

/** 'generated': served by trpc-to-openapi. */
export type RouteMethods = Record<string, Handler | 'generated'>;
