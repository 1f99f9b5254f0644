import {
  appNameSchema,
  hostIdSchema,
  hostListSchema,
  hostRevokedSchema,
  hostSchema,
  hostStatusSchema,
  joinTokenCreatedSchema,
  joinTokenCreateSchema,
  joinTokenSchema,
} from '@nebula/contracts';
import { getHost, listHosts } from '@nebula/db';
import { z } from 'zod';
import { HostNotFoundError } from '../errors.ts';
import { authedProcedure, enrolmentProcedure, router } from '../trpc.ts';

/**
 * Join tokens: a secret a new host presents once at `POST /api/v2/hosts/join` (served before the
 * auth stage: see ../http/enrolment-route.ts). Shown only in the answer of `create`.
 */
const joinTokensRouter = router({
  create: enrolmentProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/hosts/join_tokens',
        tags: ['hosts'],
        summary: 'A join token for new hosts (shown once) and the command to run on them',
        errorResponses: { 400: 'bad ttl, uses or apps' },
      },
    })
    .input(joinTokenCreateSchema)
    .output(joinTokenCreatedSchema)
    .mutation(({ ctx, input }) => ctx.hostEnrolment.createToken(input, ctx.identity.name, ctx.origin ?? 'http://127.0.0.1:8080')),

  list: enrolmentProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/hosts/join_tokens', tags: ['hosts'], summary: 'Join tokens (never their secrets), newest first' } })
    .input(z.void())
    .output(z.object({ join_tokens: z.array(joinTokenSchema) }))
    .query(async ({ ctx }) => ({ join_tokens: await ctx.hostEnrolment.listTokens() })),

  delete: enrolmentProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/api/v2/hosts/join_tokens/{id}',
        tags: ['hosts'],
        summary: 'Deletes a join token: no host can join with it any more (hosts that joined stay)',
        errorResponses: { 404: '{"join_token_exists": false}' },
      },
    })
    .input(z.strictObject({ id: z.uuid() }))
    .output(z.object({ deleted: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.hostEnrolment.deleteToken(input.id);
      return { deleted: true as const };
    }),
});

/**
 * Hosts as their workers' heartbeats describe them (written by the notifier). Online or offline is
 * judged at each read: a host is offline once it missed HOST_OFFLINE_AFTER_MISSED_HEARTBEATS of its
 * own heartbeat intervals.
 */
export const hostsRouter = router({
  // Before `get`: the REST handler takes the first route that matches, and `join_tokens` is a valid host id.
  joinTokens: joinTokensRouter,

  revoke: enrolmentProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/hosts/{id}/revoke',
        tags: ['hosts'],
        summary: "Revokes a host's credential: its connection is closed, it cannot reconnect, its results are refused",
        errorResponses: { 404: '{"host_exists": false}: it never joined', 503: 'recorded, but NATS has not applied it yet (retried)' },
      },
    })
    .input(z.strictObject({ id: hostIdSchema }))
    .output(hostRevokedSchema)
    .mutation(({ ctx, input }) => ctx.hostEnrolment.revoke(input.id)),

  list: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/hosts',
        tags: ['hosts'],
        summary: 'Hosts by id, with what they run; filter by app or status, page with `after`',
        errorResponses: { 400: 'bad filter or limit' },
      },
    })
    .input(
      z
        .strictObject({
          app: appNameSchema.optional(),
          status: hostStatusSchema.optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          after: z.string().min(1).max(253).optional(),
        })
        .optional(),
    )
    .output(hostListSchema)
    .query(({ ctx, input }) => listHosts(ctx.db, { offlineAfterMissed: ctx.settings.offlineAfterMissedHeartbeats, ...input })),

  get: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/hosts/{id}',
        tags: ['hosts'],
        summary: 'One host',
        errorResponses: { 400: 'not a host id', 403: '{"host_exists": false}' },
      },
    })
    .input(z.strictObject({ id: hostIdSchema }))
    .output(hostSchema)
    .query(async ({ ctx, input }) => {
      const host = await getHost(ctx.db, input.id, { offlineAfterMissed: ctx.settings.offlineAfterMissedHeartbeats });
      if (!host) throw new HostNotFoundError(input.id);
      return host;
    }),
});
