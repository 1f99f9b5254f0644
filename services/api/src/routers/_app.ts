import { router } from '../trpc.ts';
import { appsRouter } from './apps.ts';
import { cronJobsRouter } from './cron-jobs.ts';
import { deviceGroupsRouter } from './device-groups.ts';
import { hostsRouter } from './hosts.ts';
import { prunesRouter } from './prunes.ts';
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
  deviceGroups: deviceGroupsRouter,
  prunes: prunesRouter,
  session: sessionRouter,
});

export type AppRouter = typeof appRouter;
