import { type RolloutProgress, rolloutProgressSchema } from '@nebula/contracts';
import { commandRollout, findRolloutSubject, getRolloutProgress, type ROLLOUT_COMMANDS, type RolloutCommand } from '@nebula/db';
import { z } from 'zod';
import { requireAccess } from '../access/guard.ts';
import type { Identity } from '../auth.ts';
import { RolloutNotFoundError } from '../errors.ts';
import { authedProcedure, type Context, type Meta } from '../trpc.ts';

/**
 * A person's say over a rollout in waves: pause, resume, promote (the next wave now; `full`: all the
 * rest), abort (stop; with on_failure "rollback", roll back), retry (the change again to the failed
 * hosts of a paused rollout). The rollout controller (libs/db) decides whether the rollout's state
 * allows it; a refusal is 409 `{"error", "state", "command"}` (errors.ts RolloutCommandRefusedError).
 *
 *   look up the rollout's app or group ──none──▶ 403 {"rollout_exists": false}   (as GET /rollouts/{id})
 *        │ found
 *   "rw" on it? ──no──▶ 403 {"access_allowed": false}
 *        │ yes
 *   commandRollout ──refused──▶ 409     ──done──▶ 200 with the progress after the command
 *
 * A rollout id is a random uuid: learning that one exists tells nothing, so the lookup comes first,
 * as in `rollouts.get`.
 */
const commandInput = z.strictObject({ id: z.uuid() });
// The pipe keeps trpc-to-openapi from coercing a body's "true" into a boolean (see apps.ts).
const promoteInput = z.strictObject({ id: z.uuid(), full: z.boolean().pipe(z.boolean()).optional() });

const SUMMARY: Record<RolloutCommand, string> = {
  pause: 'Pause a rollout in waves: no further wave starts until resumed',
  resume: 'Resume a paused rollout',
  promote: 'Start the next wave now, without waiting for bake time (full=true: every remaining wave)',
  abort: 'Stop a rollout; with on_failure "rollback", roll its hosts back to the last good revision',
  retry: 'Send the change again to the failed hosts of a paused rollout',
};

async function run(ctx: Context & { identity: Identity }, id: string, command: RolloutCommand, full?: boolean): Promise<RolloutProgress> {
  const subject = await findRolloutSubject(ctx.db, id);
  if (subject === null) throw new RolloutNotFoundError(id);
  // A group change is the device group's: "rw" on the group, as for changing it.
  requireAccess(ctx.identity, subject.kind === 'group' ? 'device_groups' : 'apps', subject.app, 'rw');
  const done = await commandRollout(ctx.db, id, command, { actor: ctx.identity.name, ...(full === undefined ? {} : { full }) });
  // Deleted between the lookup and the command (retention): as missing.
  if (done === null) throw new RolloutNotFoundError(id);
  const p = await getRolloutProgress(ctx.db, id, { offlineAfterMissed: ctx.settings.offlineAfterMissedHeartbeats, hostsLimit: 100 });
  if (!p) throw new RolloutNotFoundError(id);
  return p;
}

function meta(command: RolloutCommand): Meta {
  return {
    openapi: {
      method: 'POST',
      path: `/api/v2/rollouts/{id}/${command}` as const,
      tags: ['rollouts'],
      summary: SUMMARY[command],
      errorResponses: {
        400: 'not a rollout id, or a bad parameter',
        403: 'no such rollout ({"rollout_exists": false}) or no "rw" on its app or device group ({"access_allowed": false})',
        409: 'the rollout is not in a state that allows it: {"error": ..., "state": ..., "command": ...}',
      },
    },
  };
}

function command(c: Exclude<RolloutCommand, 'promote'>) {
  return authedProcedure
    .meta(meta(c))
    .input(commandInput)
    .output(rolloutProgressSchema)
    .mutation(({ ctx, input }) => run(ctx, input.id, c));
}

/** The procedures, merged into the rollouts router; REST serves them through http/v2-rollouts.ts. */
export const rolloutCommandProcedures = {
  pause: command('pause'),
  resume: command('resume'),
  promote: authedProcedure
    .meta(meta('promote'))
    .input(promoteInput)
    .output(rolloutProgressSchema)
    .mutation(({ ctx, input }) => run(ctx, input.id, 'promote', input.full)),
  abort: command('abort'),
  retry: command('retry'),
} satisfies Record<(typeof ROLLOUT_COMMANDS)[number], unknown>;
