import { z } from 'zod';
import { authedProcedure, router } from '../trpc.ts';

/** `GET /api/v2/status`: the original's liveness check for clients (needs a valid login, as there). */
export const statusRouter = router({
  get: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/status', tags: ['status'], summary: 'Is the API available' } })
    .input(z.void())
    .output(z.object({ api_available: z.literal(true) }))
    .query(() => ({ api_available: true as const })),
});
