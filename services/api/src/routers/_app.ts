import { router } from '../trpc.ts';
import { appsRouter } from './apps.ts';
import { cronJobsRouter } from './cron-jobs.ts';
import { hostsRouter } from './hosts.ts';
import { reportsRouter } from './reports.ts';
import { rolloutsRouter } from './rollouts.ts';
import { sessionRouter } from './session.ts';
import { statusRouter } from './status.ts';
import { userGroupsRouter, usersRouter } from './users.ts';

export const appRouter = router({
  status: statusRouter,
  apps: appsRouter,
  rollouts: rolloutsRouter,
  hosts: hostsRouter,
  reports: reportsRouter,
  users: usersRouter,
  userGroups: userGroupsRouter,
  cronJobs: cronJobsRouter,
  session: sessionRouter,
});

export type AppRouter = typeof appRouter;
