import { createHash } from 'node:crypto';
import type { RolloutState, RolloutStrategy } from '@nebula/contracts';
import { type Kysely, sql } from 'kysely';
import type { Database } from './database.ts';
import { isUuid } from './query-input.ts';

/*
 * PLACEHOLDER until the rollout controller lands: the signatures the API builds on, implemented
 * minimally. No rollout goes out in waves yet, so every command is refused as "not in waves" (409)
 * and a dry run plans the waves from the hosts serving the app. The controller's branch replaces
 * this file.
 */

export const ROLLOUT_COMMANDS = ['pause', 'resume', 'promote', 'abort', 'retry'] as const;
export type RolloutCommand = (typeof ROLLOUT_COMMANDS)[number];

/** The rollout is not in a state that allows the command (e.g. pause of one that went all at once). */
export class RolloutConflictError extends Error {
  override name = 'RolloutConflictError';
  readonly retryable = false;
  readonly state: RolloutState;
  readonly command: RolloutCommand;
  constructor(id: string, state: RolloutState, command: RolloutCommand, why = 'it does not go out in waves') {
    super(`rollout ${id} is ${state}: cannot ${command} it (${why})`);
    this.state = state;
    this.command = command;
  }
}

/** The app of a rollout, or null when there is no such rollout. */
export async function findRolloutApp(db: Kysely<Database>, id: string): Promise<string | null> {
  if (!isUuid(id)) return null;
  const row = await db.selectFrom('rollouts').select('app').where('id', '=', id).executeTakeFirst();
  return row?.app ?? null;
}

/** Applies `command` to the rollout; null when there is no such rollout. */
export async function commandRollout(
  db: Kysely<Database>,
  id: string,
  command: RolloutCommand,
  _opts: { actor: string; full?: boolean },
): Promise<{ id: string; app: string; state: RolloutState } | null> {
  if (!isUuid(id)) return null;
  const row = await db
    .selectFrom('rollouts')
    .select(['app', 'expected_hosts'])
    .select(sql<number>`(select count(*) from rollout_hosts rh where rh.rollout_id = rollouts.id)::int`.as('reported'))
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) return null;
  const state: RolloutState = row.reported >= row.expected_hosts.length ? 'succeeded' : 'rolling';
  throw new RolloutConflictError(id, state, command);
}

/** The stable order of an app's hosts: the same hosts come first in every rollout of the app. */
function hostOrder(app: string, hosts: string[]): string[] {
  const key = (h: string) => createHash('sha256').update(`${app}\0${h}`).digest('hex');
  return hosts
    .map((h) => [key(h), h] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, h]) => h);
}

/** The waves a change of `app` would go out in now: each wave's own hosts (cumulative ceil-percent split). */
export async function planRolloutDryRun(
  db: Kysely<Database>,
  app: string,
  strategy: RolloutStrategy | null,
  _opts: { offlineAfterMissedHeartbeats: number },
): Promise<{ members: number; waves: Array<{ wave: number; percent: number; hosts: string[] }> }> {
  const rows = await db.selectFrom('hosts').select('id').where(sql<boolean>`${app} = any(apps)`).execute();
  const members = hostOrder(
    app,
    rows.map((r) => r.id),
  );
  const waves: Array<{ wave: number; percent: number; hosts: string[] }> = [];
  let taken = 0;
  for (const percent of strategy?.waves ?? [100]) {
    const upTo = Math.min(members.length, Math.ceil((percent * members.length) / 100));
    if (upTo <= taken) continue;
    waves.push({ wave: waves.length + 1, percent, hosts: members.slice(taken, upTo) });
    taken = upTo;
  }
  return { members: members.length, waves };
}
