import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { TRPCError } from '@trpc/server';
import { RETRY_AFTER_SECONDS } from '../errors.ts';
import { appRouter } from '../routers/_app.ts';
import type { Context } from '../trpc.ts';

export type OnProcedureError = (opts: { error: TRPCError; path?: string | undefined }) => void;

/** `/trpc/<procedure>`: the typed client's transport, over the body the guard already read. */
export function createTrpcRoute(contextFor: (req: IncomingMessage) => Context, onError: OnProcedureError) {
  const handler = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    createContext: ({ req }) => contextFor(req),
    onError,
    responseMeta: ({ errors }) => (errors.some((e) => e.code === 'SERVICE_UNAVAILABLE') ? { headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } } : {}),
  });
  return async (req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> => {
    (req as IncomingMessage & { body?: unknown }).body = raw === '' ? undefined : raw;
    // tRPC labels some of its JSON error bodies text/plain (415...): every answer here is JSON,
    // except the event streams of subscriptions.
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (name, value) => setHeader(name, name.toLowerCase() === 'content-type' && value !== 'text/event-stream' ? 'application/json' : value);
    await handler(req, res);
  };
}
