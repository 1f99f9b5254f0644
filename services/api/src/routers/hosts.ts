import { appNameSchema, hostIdSchema, hostListSchema, hostSchema, hostStatusSchema } from '@nebula/contracts';
import { getHost, listHosts } from '@nebula/db';
import { z } from 'zod';
import { HostNotFoundError } from '../errors.ts';
import { authedProcedure, router } from '../trpc.ts';

/**
 * Hosts as their workers' heartbeats describe them (written by the notifier). Online or offline is
 * judged at each read: a host is offline once it missed HOST_OFFLINE_AFTER_MISSED_HEARTBEATS of its
 * own heartbeat intervals.
 */
export const hostsRouter = router({
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
