import { router } from '../trpc.ts';
import { appsRouter } from './apps.ts';
import { rolloutsRouter } from './rollouts.ts';
import { statusRouter } from './status.ts';

export const appRouter = router({
  status: statusRouter,
  apps: appsRouter,
  rollouts: rolloutsRouter,
});

export type AppRouter = typeof appRouter;
