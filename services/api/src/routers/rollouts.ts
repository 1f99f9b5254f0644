import { z } from 'zod';
import { getRollout } from '../db/apps.ts';
import { RolloutNotFoundError } from '../errors.ts';
import { authedProcedure, router } from '../trpc.ts';

/** A rollout: the hosts expected to apply a revision, and what each reported so far. */
export const rolloutsRouter = router({
  get: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/rollouts/{id}', tags: ['rollouts'], summary: 'Progress of one change, host by host', errorResponses: { 403: '{"rollout_exists": false}' } } })
    .input(z.strictObject({ id: z.uuid() }))
    .output(
      z.object({
        rollout_id: z.string(),
        app_name: z.string(),
        incarnation: z.number().int(),
        app_id: z.number().int(),
        action: z.string(),
        created_at: z.string(),
        published_at: z.string().nullable(),
        expected_hosts: z.array(z.string()),
        hosts: z.array(z.object({ host: z.string(), status: z.string(), error: z.string().nullable(), reported_at: z.string() })),
        pending_hosts: z.array(z.string()),
      }),
    )
    .query(async ({ ctx, input }) => {
      const r = await getRollout(ctx.db, input.id);
      if (!r) throw new RolloutNotFoundError(input.id);
      const reported = new Set(r.hosts.map((h) => h.host));
      return {
        rollout_id: r.id,
        app_name: r.app,
        incarnation: r.incarnation,
        app_id: r.revision,
        action: r.action,
        created_at: r.createdAt.toISOString(),
        published_at: r.publishedAt?.toISOString() ?? null,
        expected_hosts: r.expectedHosts,
        hosts: r.hosts.map((h) => ({ host: h.host, status: h.status, error: h.error, reported_at: h.reportedAt.toISOString() })),
        pending_hosts: r.expectedHosts.filter((h) => !reported.has(h)),
      };
    }),
});
