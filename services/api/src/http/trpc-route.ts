import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { Identity } from '../auth.ts';
import { RETRY_AFTER_SECONDS } from '../errors.ts';
import { appRouter } from '../routers/_app.ts';
import type { Context } from '../trpc.ts';
import { sendJson } from './respond.ts';
import type { WatchSlots } from './watch-slots.ts';

export type OnProcedureError = (opts: { error: TRPCError; path?: string | undefined }) => void;

export interface TrpcRouteOptions {
  /** Calls per batch request; a larger batch gets 400 JSON. */
  maxBatchSize: number;
  /** Open `rollouts.watch` streams per identity; one more gets 429 JSON. */
  watchSlots: WatchSlots;
}

const WATCH_PATH = '/trpc/rollouts.watch';

/** `/trpc/<procedure>`: the typed client's transport, over the body the guard already read. */
export function createTrpcRoute(contextFor: (req: IncomingMessage) => Context, onError: OnProcedureError, opts: TrpcRouteOptions) {
  const handler = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    createContext: ({ req }) => contextFor(req),
    onError,
    maxBatchSize: opts.maxBatchSize,
    responseMeta: ({ errors }) => (errors.some((e) => e.code === 'SERVICE_UNAVAILABLE') ? { headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } } : {}),
  });
  return async (req: IncomingMessage, res: ServerResponse, path: string, raw: string, identity: Identity): Promise<void> => {
    if (path === WATCH_PATH) {
      // Counted before the stream starts: once it has, an error can only be an event inside it.
      const release = opts.watchSlots.tryAcquire(identity.name);
      if (!release) {
        const limit = opts.watchSlots.limit;
        return sendJson(
          res,
          429,
          { error: 'too many watches', message: `at most ${limit} open watches per user: close one first`, limit },
          { 'retry-after': '5' },
        );
      }
      res.once('close', release);
    }
    (req as IncomingMessage & { body?: unknown }).body = raw === '' ? undefined : raw;
    // tRPC labels some of its JSON error bodies text/plain (415...): every answer here is JSON,
    // except the event streams of subscriptions.
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (name, value) => setHeader(name, name.toLowerCase() === 'content-type' && value !== 'text/event-stream' ? 'application/json' : value);
    await handler(req, res);
  };
}
