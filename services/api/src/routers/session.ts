import { z } from 'zod';
import { authedProcedure, router } from '../trpc.ts';

/**
 * Who the caller is and what it may do: the dashboard signs in by calling `session.me` with the
 * credentials typed into its form (a wrong pair is the auth stage's 401), and hides the actions the
 * rights do not allow. Hiding is a courtesy only: every procedure checks the rights again.
 */
const levels = z.record(z.string(), z.enum(['ro', 'rw']));

export const sessionRouter = router({
  me: authedProcedure
    .input(z.void())
    .output(
      z.object({
        name: z.string(),
        kind: z.enum(['local-admin', 'user']),
        permissions: z.object({
          admin: z.boolean(),
          pruning_allowed: z.boolean(),
          privileged_allowed: z.boolean(),
          apps: levels,
          device_groups: levels,
          cron_jobs: levels,
        }),
      }),
    )
    .query(({ ctx }) => ({ name: ctx.identity.name, kind: ctx.identity.kind, permissions: ctx.identity.permissions })),
});
