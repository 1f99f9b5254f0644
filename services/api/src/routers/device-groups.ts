import {
  appNameSchema,
  cronJobDocSchema,
  cronJobNameSchema,
  deviceGroupConfigSchema,
  deviceGroupNameSchema,
  MAX_GROUP_MEMBERS,
  rolloutListSchema,
} from '@nebula/contracts';
import { findLiveApp, listRollouts } from '@nebula/db';
import { z } from 'zod';
import { AccessDeniedError } from '../access/errors.ts';
import { requireAccess, visibleConfig } from '../access/guard.ts';
import { mayPrune } from '../access/permissions.ts';
import type { Identity } from '../auth.ts';
import { findLiveCronJob } from '../db/cron-jobs.ts';
import {
  changeDeviceGroup,
  createDeviceGroup,
  deleteDeviceGroup,
  type GroupChangeResult,
  pruneAllDeviceGroups,
  pruneDeviceGroup,
} from '../db/device-group-changes.ts';
import { findLiveGroup, type GroupState, listLiveGroupNames } from '../db/device-groups.ts';
import { DeviceGroupNotFoundError } from '../errors.ts';
import { authedProcedure, router } from '../trpc.ts';
import { changeOptions } from './app-inputs.ts';
import { toDoc as appDoc, appDocSchema } from './apps.ts';

/**
 * Device groups: the original's routes under /api/v2 (http/v2-device-groups.ts gives their codes and
 * bodies). A change is one group message to the hosts that follow the group and a rollout that
 * tracks it host by host (`rollout_id` in the answers). Who may do what:
 *
 *   list                    any login
 *   get, info, rollouts     "ro" on the group ("rw" includes it; the original's exact match did not)
 *   create, update, delete  "rw" on the group (as the original's mutations)
 *   prune, prune all        pruning_allowed, or admin (as the original)
 *
 * Naming an app or a cron job in a group needs no right on it (as in the original): the group's
 * owner decides what its hosts run. `info` shows env values only to a caller with "rw" on the app
 * (or job). A caller without the right is refused before the group is looked up.
 */
const nameInput = z.strictObject({ name: deviceGroupNameSchema });

/** A group as the original returns it (`device_group`, `device_group_id`, `apps`, `cron_jobs`, `prune_id`), plus ours. */
export const deviceGroupDocSchema = z.object({
  device_group: z.string(),
  device_group_id: z.number().int().positive(),
  prune_id: z.number().int().positive(),
  apps: z.array(z.string()),
  cron_jobs: z.array(z.string()),
  incarnation: z.number().int().positive(),
  seq: z.number().int().positive(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type DeviceGroupDoc = z.output<typeof deviceGroupDocSchema>;

const changedDocSchema = deviceGroupDocSchema.extend({ rollout_id: z.string(), expected_hosts: z.array(z.string()) });

export function toGroupDoc(g: GroupState): DeviceGroupDoc {
  return {
    device_group: g.name,
    device_group_id: g.device_group_id,
    prune_id: g.prune_id,
    apps: g.apps,
    cron_jobs: g.cron_jobs,
    incarnation: g.incarnation,
    seq: g.seq,
    created_at: g.createdAt.toISOString(),
    updated_at: g.updatedAt.toISOString(),
  };
}

function changed(r: GroupChangeResult) {
  return { ...toGroupDoc(r.group), rollout_id: r.rolloutId, expected_hosts: r.expectedHosts };
}

function requirePrune(identity: Identity): void {
  if (!mayPrune(identity.permissions)) throw new AccessDeniedError(`"${identity.name}" may not prune images: that needs pruning_allowed, or admin`);
}

const MISSING = { 403: 'the group does not exist: {"device_group_exists": false}' };
const MEMBERS = {
  400: 'not a list: {"apps_is_list": false} or {"cron_jobs_is_list": false}; bad names: {"errors": {...}}',
  403: 'a named one missing (cron jobs checked first): {"cron_job_exists": false} or {"app_exists": false}',
};
const lists = { apps: z.array(appNameSchema).max(MAX_GROUP_MEMBERS).optional(), cron_jobs: z.array(cronJobNameSchema).max(MAX_GROUP_MEMBERS).optional() };

export const deviceGroupsRouter = router({
  list: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/device_groups', tags: ['device_groups'], summary: 'Names of all device groups' } })
    .input(z.void())
    .output(z.object({ device_groups: z.array(z.string()) }))
    .query(async ({ ctx }) => ({ device_groups: await listLiveGroupNames(ctx.db) })),

  get: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/api/v2/device_groups/{name}', tags: ['device_groups'], summary: 'One device group', errorResponses: MISSING } })
    .input(nameInput)
    .output(deviceGroupDocSchema)
    .query(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'device_groups', input.name, 'ro');
      const g = await findLiveGroup(ctx.db, input.name);
      if (!g) throw new DeviceGroupNotFoundError(input.name);
      return toGroupDoc(g);
    }),

  info: authedProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/api/v2/device_groups/{name}/info',
        tags: ['device_groups'],
        summary:
          'The group with its apps and cron jobs in full: {"apps": [docs], "apps_list", "cron_jobs": [docs], "cron_jobs_list", "prune_id", "device_group_id"}',
        errorResponses: MISSING,
      },
    })
    .input(nameInput)
    .output(
      z.object({
        apps: z.array(appDocSchema),
        apps_list: z.array(z.string()),
        cron_jobs: z.array(cronJobDocSchema),
        cron_jobs_list: z.array(z.string()),
        prune_id: z.number().int(),
        device_group_id: z.number().int(),
      }),
    )
    .query(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'device_groups', input.name, 'ro');
      const g = await findLiveGroup(ctx.db, input.name);
      if (!g) throw new DeviceGroupNotFoundError(input.name);
      // Read one by one, as the original: one gone meanwhile is skipped.
      const apps = [];
      for (const name of g.apps) {
        const a = await findLiveApp(ctx.db, name);
        if (a) apps.push(visibleConfig(ctx.identity, name, appDoc(a)));
      }
      const jobs = [];
      for (const name of g.cron_jobs) {
        const j = await findLiveCronJob(ctx.db, name);
        if (j) jobs.push(visibleConfig(ctx.identity, name, j, 'cron_jobs'));
      }
      return { apps, apps_list: g.apps, cron_jobs: jobs, cron_jobs_list: g.cron_jobs, prune_id: g.prune_id, device_group_id: g.device_group_id };
    }),

  /** The group's changes (rollouts of kind group), newest first; page with `before`. Ours (tRPC only): the dashboard's group page. */
  rollouts: authedProcedure
    .input(z.strictObject({ name: deviceGroupNameSchema, limit: z.coerce.number().int().min(1).max(100).default(20), before: z.uuid().optional() }))
    .output(rolloutListSchema)
    .query(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'device_groups', input.name, 'ro');
      const list = await listRollouts(ctx.db, input.name, {
        kind: 'group',
        offlineAfterMissed: ctx.settings.offlineAfterMissedHeartbeats,
        limit: input.limit,
        before: input.before,
      });
      // A deleted group's changes stay listable; a name that never had any is a mistake worth saying.
      if (list.rollouts.length === 0 && input.before === undefined && !(await findLiveGroup(ctx.db, input.name)))
        throw new DeviceGroupNotFoundError(input.name);
      return list;
    }),

  create: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/device_groups/{name}',
        tags: ['device_groups'],
        summary: 'Create a device group ({"apps": [...], "cron_jobs": [...]}, both default []); device_group_id and prune_id 1',
        errorResponses: { ...MEMBERS, 403: `exists already: {"device_group_exists": true}; ${MEMBERS[403]}` },
      },
    })
    .input(deviceGroupConfigSchema.safeExtend({ name: deviceGroupNameSchema }))
    .output(changedDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...config } = input;
      requireAccess(ctx.identity, 'device_groups', name, 'rw');
      return changed(await createDeviceGroup(ctx.db, name, config, changeOptions(ctx)));
    }),

  update: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/device_groups/{name}/update',
        tags: ['device_groups'],
        summary: 'Replace both lists (a missing one becomes []); device_group_id + 1',
        errorResponses: { ...MEMBERS, 403: `${MISSING[403]}; ${MEMBERS[403]}` },
      },
      successStatus: 202,
    })
    .input(deviceGroupConfigSchema.safeExtend({ name: deviceGroupNameSchema }))
    .output(changedDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...config } = input;
      requireAccess(ctx.identity, 'device_groups', name, 'rw');
      return changed(await changeDeviceGroup(ctx.db, name, { kind: 'replace', ...config }, changeOptions(ctx)));
    }),

  patch: authedProcedure
    .meta({
      openapi: {
        method: 'PATCH',
        path: '/api/v2/device_groups/{name}/update',
        tags: ['device_groups'],
        summary:
          'Set the lists given, keep the other (PUT does the same); ours: add_apps, remove_apps, add_cron_jobs, remove_cron_jobs edit the lists under the row lock; device_group_id + 1',
        errorResponses: { ...MEMBERS, 403: `${MISSING[403]}; ${MEMBERS[403]}` },
      },
      successStatus: 202,
    })
    .input(
      // The contracts' deviceGroupPatchSchema (either list, no defaults) plus our list edits.
      z
        .strictObject({
          name: deviceGroupNameSchema,
          ...lists,
          add_apps: lists.apps,
          remove_apps: lists.apps,
          add_cron_jobs: lists.cron_jobs,
          remove_cron_jobs: lists.cron_jobs,
        })
        .refine((v) => Object.keys(v).length > 1, 'nothing to update: give at least one field'),
    )
    .output(changedDocSchema)
    .mutation(async ({ ctx, input }) => {
      const { name, ...patch } = input;
      requireAccess(ctx.identity, 'device_groups', name, 'rw');
      return changed(await changeDeviceGroup(ctx.db, name, { kind: 'patch', ...patch }, changeOptions(ctx)));
    }),

  delete: authedProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/api/v2/device_groups/{name}',
        tags: ['device_groups'],
        summary: "Delete a device group: its hosts remove the group's apps and cron jobs, and wait for it again",
        errorResponses: MISSING,
      },
    })
    .input(nameInput)
    .output(z.object({ rollout_id: z.string() }))
    .mutation(async ({ ctx, input }) => {
      requireAccess(ctx.identity, 'device_groups', input.name, 'rw');
      const r = await deleteDeviceGroup(ctx.db, input.name, changeOptions(ctx));
      return { rollout_id: r.rolloutId };
    }),

  prune: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/device_groups/{name}/prune',
        tags: ['device_groups'],
        summary:
          "Every host of the group removes the images no container uses (keeping each app's current and previous); prune_id + 1 (pruning_allowed or admin)",
        errorResponses: MISSING,
      },
      successStatus: 202,
    })
    .input(nameInput)
    .output(changedDocSchema)
    .mutation(async ({ ctx, input }) => {
      requirePrune(ctx.identity);
      return changed(await pruneDeviceGroup(ctx.db, input.name, changeOptions(ctx)));
    }),

  pruneAll: authedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/api/v2/prune',
        tags: ['device_groups'],
        summary: 'Prune on every device group: {"prune_ids": {"<group>": n}} (ours: "rollout_ids": {"<group>": id}); pruning_allowed or admin',
      },
      successStatus: 202,
    })
    .input(z.void())
    .output(z.object({ prune_ids: z.record(z.string(), z.number().int()), rollout_ids: z.record(z.string(), z.string()) }))
    .mutation(async ({ ctx }) => {
      requirePrune(ctx.identity);
      const rs = await pruneAllDeviceGroups(ctx.db, changeOptions(ctx));
      return {
        prune_ids: Object.fromEntries(rs.map((r) => [r.group.name, r.group.prune_id])),
        rollout_ids: Object.fromEntries(rs.map((r) => [r.group.name, r.rolloutId])),
      };
    }),
});
