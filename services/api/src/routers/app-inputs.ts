import { appConfigPatchSchema, appConfigSchema, appNameSchema, envVarsSchema } from '@nebula/contracts';
import { requirePrivilegeFor } from '../access/guard.ts';
import type { Identity } from '../auth.ts';
import { type ChangeRequest, type PlannedChange, planChange } from '../changes.ts';
import type { ChangeOptions, Planner } from '../db/apps.ts';
import type { Context } from '../trpc.ts';

/**
 * What the change procedures (apps.ts) and their dry runs (app-dry-run.ts) share, so that a dry run
 * takes exactly the input, and makes exactly the checks, of the change it stands for.
 */
export const createInput = appConfigSchema.safeExtend({ name: appNameSchema });
export const updateInput = appConfigSchema.safeExtend({ name: appNameSchema, env_vars: envVarsSchema.default(() => []) });
export const patchInput = appConfigPatchSchema
  .safeExtend({ name: appNameSchema })
  .refine((v) => Object.keys(v).length > 1, 'nothing to update: give at least one field');

/**
 * Who may do what (access/guard.ts): reads need "ro" on the app, changes "rw"; a change whose
 * resulting config is privileged (privileged, devices, the host network, bind mounts) also needs
 * privileged_allowed, so a deployer cannot swap the image of a privileged app an admin set up.
 * stop, start, restart, roll and pull keep the config as it is and need only "rw".
 */
export function plannedBy(identity: Identity, name: string, planned: PlannedChange): PlannedChange {
  requirePrivilegeFor(identity, name, planned.config);
  return planned;
}

export function changeOptions(ctx: Context & { identity: { name: string } }): ChangeOptions {
  return {
    actor: ctx.identity.name,
    offlineAfterMissedHeartbeats: ctx.settings.offlineAfterMissedHeartbeats,
    maxMessageBytes: ctx.settings.maxMessageBytes?.(),
  };
}

/** The next config of an update (the whole config) or a patch (merged into the current one). */
export function configPlanner(identity: Identity, name: string, req: Extract<ChangeRequest, { kind: 'update' | 'patch' }>): Planner {
  return (current) => plannedBy(identity, name, planChange(name, current, req));
}
