import type { Database, Kysely } from '@nebula/db';
import type { Logger } from '@nebula/service-kit';
import { initTRPC, TRPCError } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { ZodError } from 'zod';
import { requireAdmin } from './access/guard.ts';
import type { Authenticator, Identity } from './auth.ts';
import { ApiError, apiErrorOf, compatZodBody, fieldErrors } from './errors.ts';
import type { HostEnrolment } from './hosts/host-enrolment.ts';

/**
 * The one tRPC instance. Procedures write to PostgreSQL only (the outbox relay publishes), so the
 * context carries the database, not the NATS connection.
 */
export interface Context {
  db: Kysely<Database>;
  log: Logger;
  /** Who is calling; null when not authenticated. */
  identity: Identity | null;
  /** Users and groups procedures tell it to forget remembered credentials; absent in callers that change no user. */
  auth?: Authenticator;
  settings: {
    offlineAfterMissedHeartbeats: number;
    /** How often a `rollouts.watch` re-reads the progress (default 500 ms). */
    watchPollMs?: number;
    /** The NATS server's max_payload (from its INFO), when connected: larger change messages are refused. */
    maxMessageBytes?: () => number | undefined;
  };
  /** Aborted when the server shuts down: open subscriptions end. */
  stopping?: AbortSignal;
  /** Join tokens and revocations (they need NATS and the bus keys); absent in callers that only read. */
  hostEnrolment?: HostEnrolment;
  /** `http://<Host header>` of the request: the URL a join command names when API_PUBLIC_URL is unset. */
  origin?: string;
}

export type Meta = OpenApiMeta & {
  /** REST status on success (202 for actions, as the original answers them). */
  successStatus?: number;
};

/**
 * Server-sent events of subscriptions (`rollouts.watch`): a ping comment every `ping.intervalMs`
 * keeps idle proxies from cutting the stream and lets the client notice a dead one (it reconnects
 * after `client.reconnectAfterInactivityMs` without a byte); after `maxDurationMs` the server ends
 * the stream and the client's EventSource reconnects, so no stream lives forever.
 *
 * tRPC reads these from the one instance below at each request, so they are process-wide:
 * `configureSse` (called by createApiServer) sets them.
 */
export const SSE_DEFAULTS = { pingMs: 15_000, maxDurationMs: 15 * 60_000 } as const;

const sse = {
  ping: { enabled: true, intervalMs: SSE_DEFAULTS.pingMs as number },
  maxDurationMs: SSE_DEFAULTS.maxDurationMs as number,
  client: { reconnectAfterInactivityMs: SSE_DEFAULTS.pingMs * 3 },
};

export function configureSse(opts: { pingMs?: number; maxDurationMs?: number }): void {
  sse.ping.intervalMs = opts.pingMs ?? SSE_DEFAULTS.pingMs;
  sse.client.reconnectAfterInactivityMs = sse.ping.intervalMs * 3;
  sse.maxDurationMs = opts.maxDurationMs ?? SSE_DEFAULTS.maxDurationMs;
}

const t = initTRPC
  .context<Context>()
  .meta<Meta>()
  .create({
    // Never stack traces in error bodies, whatever NODE_ENV says.
    isDev: false,
    sse,
    errorFormatter({ shape, error, input }) {
      const cause = error.cause;
      let extra: Record<string, unknown> = {};
      if (cause instanceof ApiError) extra = { ...cause.body };
      else if (cause instanceof ZodError) {
        // The original's answers for a missing image or schedule and a bad schedule, then every field's errors.
        extra = { ...compatZodBody(input, cause.issues), errors: fieldErrors(cause.issues) };
      }
      return {
        message: error.code === 'INTERNAL_SERVER_ERROR' ? 'internal server error' : shape.message,
        code: shape.code,
        data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path },
        ...extra,
      };
    },
  });

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Expected failures become their tRPC codes here, in one place; the body comes from errorFormatter. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) {
    const cause = apiErrorOf(result.error.cause);
    if (cause) throw new TRPCError({ code: cause.code, message: cause.message, cause });
  }
  return result;
});

export const publicProcedure = t.procedure.use(mapErrors);

export const authedProcedure = publicProcedure.use(({ ctx, next }) => {
  if (ctx.identity === null) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'authentication required' });
  return next({ ctx: { ...ctx, identity: ctx.identity } });
});

/** Authenticated as an admin (the local admin, or a user of a group with `admin`). */
export const adminProcedure = authedProcedure.use(({ ctx, next }) => {
  requireAdmin(ctx.identity);
  return next();
});

/** An admin's, and the server has host enrolment (bus keys and NATS) configured: hosts join the whole fleet. */
export const enrolmentProcedure = adminProcedure.use(({ ctx, next }) => {
  const hostEnrolment = ctx.hostEnrolment;
  if (!hostEnrolment) throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'host enrolment is not configured in this server' });
  return next({ ctx: { ...ctx, hostEnrolment } });
});
