import { DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS, type RolloutState, type RolloutStrategy, rolloutStrategySchema, type WaveBase } from '@nebula/contracts';
import { sql, type Transaction } from 'kysely';
import { changeAppIn } from './app-changes.ts';
import type { Database } from './database.ts';
import { onlineSql } from './query-input.ts';
import { buildAppMessage, envelopeOf, insertOutboxMessage, type RevisionEnvelope } from './rollout-messages.ts';

/**
 * The steps of a rollout in waves, each within the caller's transaction, on a row the caller locked
 * with `lockRollout` (the app row first, then the rollout: the order every writer uses). The rollout
 * controller and the rollout commands go through these and nothing else:
 *
 *   startWaves   waves up to k started (counted: their hosts online now), the earlier ones finished,
 *                one message {step + 1, hosts: waves 1..k, base}
 *   succeed      the last wave finished, one message without wave: the revision is everyone's
 *   pause        paused (manual | promotion | budget)
 *   abort        aborted / failed, or with rollback: a rollback revision (all at once) and rolled_back
 */

export const ACTIVE_ROLLOUT_STATES = ['rolling', 'paused'] as const satisfies readonly RolloutState[];
export type PausedReason = 'manual' | 'promotion' | 'budget';

export interface LockedRollout {
  id: string;
  app: string;
  incarnation: number;
  revision: number;
  /** null: all at once (no state of its own). */
  state: RolloutState | null;
  strategy: RolloutStrategy | null;
  members: string[];
  /** The current wave, 1-based (0 before the first started). */
  wave: number;
  /** The step of the newest message. */
  step: number;
  /** How many waves the plan has. */
  waves: number;
  base: WaveBase | null;
  pausedReason: PausedReason | null;
  retried: Record<string, string>;
  waived: string[];
}

/** Locks the rollout's app row, then the rollout row; null when there is no such rollout. */
export async function lockRollout(trx: Transaction<Database>, id: string): Promise<LockedRollout | null> {
  const head = await trx.selectFrom('rollouts').select('incarnation').where('id', '=', id).executeTakeFirst();
  if (!head) return null;
  await trx.selectFrom('apps').select('incarnation').where('incarnation', '=', head.incarnation).forUpdate().execute();
  const r = await trx
    .selectFrom('rollouts')
    .select([
      'id',
      'app',
      'incarnation',
      'revision',
      'state',
      'strategy',
      'members',
      'wave',
      'step',
      'base',
      'paused_reason',
      'retried',
      'waived',
      (eb) => eb.selectFrom('rollout_waves').select(sql<number>`count(*)::int`.as('n')).whereRef('rollout_waves.rollout_id', '=', 'rollouts.id').as('waves'),
    ])
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!r) return null;
  return {
    id: r.id,
    app: r.app,
    incarnation: Number(r.incarnation),
    revision: r.revision,
    state: r.state as RolloutState | null,
    strategy: r.strategy === null || r.strategy === undefined ? null : rolloutStrategySchema.parse(r.strategy),
    members: r.members ?? [],
    wave: r.wave ?? 0,
    step: r.step ?? 0,
    waves: Number(r.waves ?? 0),
    base: (r.base ?? null) as WaveBase | null,
    pausedReason: r.paused_reason as PausedReason | null,
    retried: r.retried ?? {},
    waived: r.waived ?? [],
  };
}

export function isActive(state: RolloutState | null): boolean {
  return state === 'rolling' || state === 'paused';
}

interface StartOptions {
  offlineAfterMissedHeartbeats?: number | undefined;
  /** The revision's envelope when the caller has it (the change path); read otherwise. */
  envelope?: RevisionEnvelope | undefined;
  /** A message to the same hosts without a new wave (retry). */
  retry?: boolean;
}

/** Hosts of waves 1..k. */
async function hostsThrough(trx: Transaction<Database>, id: string, k: number): Promise<string[]> {
  const rows = await trx.selectFrom('rollout_waves').select('hosts').where('rollout_id', '=', id).where('wave', '<=', k).orderBy('wave').execute();
  return rows.flatMap((r) => r.hosts);
}

/**
 * Waves r.wave+1 .. k start now (k = r.wave with `retry`: the same hosts again), and one message goes
 * out naming every host of waves 1..k. The hosts counted in each new wave are those online now.
 */
export async function startWaves(trx: Transaction<Database>, r: LockedRollout, k: number, opts: StartOptions = {}): Promise<{ step: number; hosts: string[] }> {
  const n = opts.offlineAfterMissedHeartbeats ?? DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS;
  if (!opts.retry) {
    // The waves before finish now (those that had not: a promotion skips their bake).
    await trx
      .updateTable('rollout_waves')
      .set({ finished_at: sql<Date>`now()` })
      .where('rollout_id', '=', r.id)
      .where('wave', '<=', r.wave)
      .where('finished_at', 'is', null)
      .execute();
    await sql`
      update rollout_waves w
         set started_at = now(),
             counted = coalesce((select array_agg(h.id order by h.id) from hosts h
                                  where h.id = any(w.hosts) and ${onlineSql('h', { n })}), '{}')
       where w.rollout_id = ${r.id}::uuid and w.wave > ${r.wave} and w.wave <= ${k} and w.started_at is null`.execute(trx);
  }
  const step = r.step + 1;
  const hosts = await hostsThrough(trx, r.id, k);
  await trx
    .updateTable('rollouts')
    .set({
      state: 'rolling',
      wave: k,
      step,
      paused_reason: null,
      ...(r.state === 'rolling' ? {} : { state_changed_at: sql<Date>`now()` }),
    })
    .where('id', '=', r.id)
    .execute();
  const envelope = opts.envelope ?? (await envelopeOf(trx, r.id));
  await insertOutboxMessage(trx, buildAppMessage(envelope, { step, hosts, base: r.base }));
  return { step, hosts };
}

/** The last wave done: the revision becomes everyone's (late joiners included) with a message without wave. */
export async function succeedRollout(trx: Transaction<Database>, r: LockedRollout): Promise<void> {
  await finishWaves(trx, r.id);
  await setState(trx, r.id, 'succeeded');
  await insertOutboxMessage(trx, buildAppMessage(await envelopeOf(trx, r.id)));
}

export async function pauseRollout(trx: Transaction<Database>, r: LockedRollout, reason: PausedReason): Promise<void> {
  await trx.updateTable('rollouts').set({ state: 'paused', paused_reason: reason, state_changed_at: sql<Date>`now()` }).where('id', '=', r.id).execute();
}

async function finishWaves(trx: Transaction<Database>, id: string): Promise<void> {
  await trx
    .updateTable('rollout_waves')
    .set({ finished_at: sql<Date>`now()` })
    .where('rollout_id', '=', id)
    .where('started_at', 'is not', null)
    .where('finished_at', 'is', null)
    .execute();
}

async function setState(trx: Transaction<Database>, id: string, state: RolloutState, extra: { abort_reason?: string; rollback_rollout_id?: string } = {}) {
  await trx
    .updateTable('rollouts')
    .set({ state, paused_reason: null, state_changed_at: sql<Date>`now()`, ...extra })
    .where('id', '=', id)
    .execute();
}

export interface AbortOptions {
  reason: string;
  /** Make a rollback revision (the base's config, to every host at once) when there is a base. */
  rollback: boolean;
  /** The state without a rollback: failed (the budget) or aborted (a person). */
  otherwise: 'failed' | 'aborted';
  actor: string;
  offlineAfterMissedHeartbeats?: number | undefined;
}

/**
 * Stops the rollout. With `rollback` and a base to go back to: a new revision (action rollback, the
 * base's config, never in waves, its history reason naming this rollout) and state rolled_back. Hosts
 * still applying finish; the rollback revision, later, puts them back with the rest.
 */
export async function abortRollout(
  trx: Transaction<Database>,
  r: LockedRollout,
  o: AbortOptions,
): Promise<{ state: RolloutState; rollbackRolloutId: string | null }> {
  await finishWaves(trx, r.id);
  if (!o.rollback || r.base === null) {
    const reason = o.rollback ? `${o.reason}; nothing to roll back to (no earlier good revision)` : o.reason;
    await setState(trx, r.id, o.otherwise, { abort_reason: reason });
    return { state: o.otherwise, rollbackRolloutId: null };
  }
  // Its state first: the rollback revision's change must not take it for an active rollout to supersede.
  await setState(trx, r.id, 'rolled_back', { abort_reason: o.reason });
  const base = r.base;
  const made = await changeAppIn(trx, r.app, () => ({ action: 'rollback', config: base.config }), {
    actor: o.actor,
    offlineAfterMissedHeartbeats: o.offlineAfterMissedHeartbeats ?? DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS,
    noWaves: true,
    reason: `rollback of rollout ${r.id} (revision ${r.revision}) to revision ${base.revision}: ${o.reason}`,
  });
  await trx.updateTable('rollouts').set({ rollback_rollout_id: made.rolloutId }).where('id', '=', r.id).execute();
  return { state: 'rolled_back', rollbackRolloutId: made.rolloutId };
}

/** A newer change of the app: its active rollout stops where it is. */
export async function supersedeActiveRollouts(trx: Transaction<Database>, app: string, newer: string): Promise<void> {
  const active = await trx
    .selectFrom('rollouts')
    .select('id')
    .where('app', '=', app)
    .where('state', 'in', [...ACTIVE_ROLLOUT_STATES])
    .forUpdate()
    .execute();
  for (const a of active) {
    await finishWaves(trx, a.id);
    await setState(trx, a.id, 'aborted', { abort_reason: `superseded by rollout ${newer}` });
  }
}
