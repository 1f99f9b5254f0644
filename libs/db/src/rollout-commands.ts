import { DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS, planWaves, type RolloutState, type RolloutStrategy } from '@nebula/contracts';
import { type Kysely, sql } from 'kysely';
import { rolloutMembers } from './app-changes.ts';
import type { Database } from './database.ts';
import { isUuid, onlineSql } from './query-input.ts';
import { abortRollout, isActive, type LockedRollout, lockRollout, pauseRollout, startWaves } from './rollout-transitions.ts';

/**
 * What a person can do to a rollout in waves, each in one transaction on the locked rollout (so a
 * command and the controller never act on the same step twice: the controller re-checks the state,
 * wave and step it decided on):
 *
 *   pause    rolling ──▶ paused
 *   resume   paused ──▶ rolling; paused for promotion: the next wave starts now; paused by the budget:
 *            the failures so far are accepted (outside the budget from then on)
 *   promote  rolling | paused ──▶ the next wave now, its bake skipped (full: every remaining wave)
 *   abort    rolling | paused ──▶ aborted; with on_failure rollback: a rollback revision, rolled_back
 *   retry    paused ──▶ rolling: the change again (a new message, same hosts) to the failed hosts of
 *            the waves so far; their failed results no longer count and their timeout starts again
 *
 * Anything else is a RolloutConflictError (409), as is any command to a rollout that is not in waves.
 */
export const ROLLOUT_COMMANDS = ['pause', 'resume', 'promote', 'abort', 'retry'] as const;
export type RolloutCommand = (typeof ROLLOUT_COMMANDS)[number];

/** The rollout is not in a state that allows the command (the caller's to fix: not retryable as is). */
export class RolloutConflictError extends Error {
  override name = 'RolloutConflictError';
  readonly retryable = false;
  readonly state: RolloutState;
  readonly command: RolloutCommand;
  constructor(state: RolloutState, command: RolloutCommand, why?: string) {
    super(why ?? `rollout is ${state}: cannot ${command}`);
    this.state = state;
    this.command = command;
  }
}

export interface CommandOptions {
  actor: string;
  /** promote: every remaining wave at once. */
  full?: boolean;
  /** Hosts online when a wave starts are counted in it (default from contracts). */
  offlineAfterMissedHeartbeats?: number;
}

/** What a rollout changes (for an access check before commanding it): an app, or (kind 'group') a device group's name; null if none. */
export async function findRolloutSubject(db: Kysely<Database>, id: string): Promise<{ app: string; kind: 'app' | 'group' } | null> {
  if (!isUuid(id)) return null;
  const r = await db.selectFrom('rollouts').select(['app', 'kind']).where('id', '=', id).executeTakeFirst();
  return r ? { app: r.app, kind: r.kind } : null;
}

/** The state of an all-at-once rollout, for its conflict message: rolling until every online expected host reported. */
async function derivedState(db: Kysely<Database>, id: string, n: number): Promise<RolloutState> {
  const r = await sql<{ pending: number; failed: number }>`
    select count(*) filter (where rh.status is null and ${onlineSql('h', { n })})::int as pending,
           count(*) filter (where rh.status is distinct from 'applied')::int as failed
      from rollouts r cross join unnest(r.expected_hosts) e(host)
      left join rollout_hosts rh on rh.rollout_id = r.id and rh.host = e.host
      left join hosts h on h.id = e.host
     where r.id = ${id}::uuid`.execute(db);
  const c = r.rows[0];
  if (!c || c.pending > 0) return 'rolling';
  return c.failed === 0 ? 'succeeded' : 'failed';
}

export async function commandRollout(
  db: Kysely<Database>,
  id: string,
  command: RolloutCommand,
  opts: CommandOptions,
): Promise<{ id: string; app: string; state: RolloutState } | null> {
  if (!isUuid(id)) return null;
  const n = opts.offlineAfterMissedHeartbeats ?? DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS;
  let allAtOnce = false;
  const out = await db.transaction().execute(async (trx) => {
    const r = await lockRollout(trx, id);
    if (!r) return null;
    if (r.state === null || r.strategy === null) {
      allAtOnce = true;
      return { id, app: r.app, state: 'rolling' as RolloutState };
    }
    const state = await run(trx, r, r.state, r.strategy, command, opts, n);
    return { id, app: r.app, state };
  });
  if (out && allAtOnce) {
    const state = await derivedState(db, id, n);
    throw new RolloutConflictError(state, command, `rollout is not in waves (its app has no rollout_strategy): cannot ${command}`);
  }
  return out;
}

async function run(
  trx: Parameters<typeof lockRollout>[0],
  r: LockedRollout,
  state: RolloutState,
  strategy: RolloutStrategy,
  command: RolloutCommand,
  opts: CommandOptions,
  n: number,
): Promise<RolloutState> {
  const conflict = (why?: string) => new RolloutConflictError(state, command, why);
  if (!isActive(state)) throw conflict();
  switch (command) {
    case 'pause':
      if (state !== 'rolling') throw conflict();
      await pauseRollout(trx, r, 'manual');
      return 'paused';
    case 'resume': {
      if (state !== 'paused') throw conflict();
      if (r.pausedReason === 'promotion' && r.wave < r.waves) {
        await startWaves(trx, r, r.wave + 1, { offlineAfterMissedHeartbeats: n });
        return 'rolling';
      }
      const accepted =
        r.pausedReason === 'budget'
          ? await trx.selectFrom('rollout_hosts').select('host').where('rollout_id', '=', r.id).where('status', '=', 'failed').execute()
          : [];
      await trx
        .updateTable('rollouts')
        .set({
          state: 'rolling',
          paused_reason: null,
          abort_reason: null,
          state_changed_at: sql<Date>`now()`,
          ...(accepted.length > 0 ? { waived: [...new Set([...r.waived, ...accepted.map((a) => a.host)])] } : {}),
        })
        .where('id', '=', r.id)
        .execute();
      return 'rolling';
    }
    case 'promote': {
      if (r.wave >= r.waves) throw conflict(`rollout is in its last wave (${r.wave} of ${r.waves}): nothing to promote`);
      await startWaves(trx, r, opts.full === true ? r.waves : r.wave + 1, { offlineAfterMissedHeartbeats: n });
      return 'rolling';
    }
    case 'abort': {
      const done = await abortRollout(trx, r, {
        reason: `aborted by ${opts.actor}`,
        rollback: strategy.on_failure === 'rollback',
        otherwise: 'aborted',
        actor: opts.actor,
        offlineAfterMissedHeartbeats: n,
      });
      return done.state;
    }
    case 'retry': {
      if (state !== 'paused') throw conflict();
      const failed = await sql<{ host: string }>`
        select rh.host from rollout_waves w cross join unnest(w.counted) c(host)
          join rollout_hosts rh on rh.rollout_id = w.rollout_id and rh.host = c.host
         where w.rollout_id = ${r.id}::uuid and w.wave <= ${r.wave} and rh.status = 'failed'`.execute(trx);
      if (failed.rows.length === 0) throw conflict('rollout has no failed hosts to retry');
      const at = (await sql<{ now: Date }>`select now() as now`.execute(trx)).rows[0]?.now ?? new Date();
      const retried = { ...r.retried };
      for (const f of failed.rows) retried[f.host] = at.toISOString();
      await trx
        .updateTable('rollouts')
        .set({ retried: JSON.stringify(retried), abort_reason: null })
        .where('id', '=', r.id)
        .execute();
      await startWaves(trx, r, r.wave, { offlineAfterMissedHeartbeats: n, retry: true });
      return 'rolling';
    }
  }
}

/**
 * What a change with `strategy` would do now, without doing it (`?dry_run=true`): in waves, the
 * members (hosts serving the app, online or not) and each wave's own hosts; all at once (no
 * strategy), one wave of 100% with the online hosts serving the app.
 */
export async function planRolloutDryRun(
  db: Kysely<Database>,
  app: string,
  strategy: RolloutStrategy | null,
  opts: { offlineAfterMissedHeartbeats: number },
): Promise<{ members: number; waves: Array<{ wave: number; percent: number; hosts: string[] }> }> {
  if (strategy === null) {
    const rows = await db
      .selectFrom('hosts')
      .select('id')
      .where(sql<boolean>`${app} = any(apps)`)
      .where(onlineSql('hosts', { n: opts.offlineAfterMissedHeartbeats }))
      .orderBy('id')
      .execute();
    const hosts = rows.map((r) => r.id);
    return { members: hosts.length, waves: hosts.length === 0 ? [] : [{ wave: 1, percent: 100, hosts }] };
  }
  const members = await rolloutMembers(db, app);
  return { members: members.length, waves: planWaves(app, members, strategy.waves) };
}
