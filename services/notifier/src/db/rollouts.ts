import { type ContainerState, ROLLOUT_STATES, type RolloutState, type RolloutStrategy, rolloutStrategySchema } from '@nebula/contracts';
import { abortRollout, type Database, type Kysely, type LockedRollout, lockRollout, pauseRollout, sql, startWaves, succeedRollout } from '@nebula/db';
import type { CountedHost, Decision } from '../rollouts/decide.ts';

/**
 * The rollout controller's reads and writes. Reads make a snapshot of one active rollout (its
 * counted hosts, their results, the health of the current wave's hosts); the write applies one
 * decision in one transaction that locks the rollout and checks it is still where the snapshot saw
 * it (state, wave, step): a decision made by a controller that was slow, raced another or lost its
 * lock meanwhile changes nothing, so no wave is lost, repeated or skipped.
 */

export interface RolloutSnapshot {
  id: string;
  app: string;
  incarnation: number;
  revision: number;
  state: 'rolling' | 'paused';
  pausedReason: 'manual' | 'promotion' | 'budget' | null;
  strategy: RolloutStrategy;
  wave: number;
  waves: number;
  step: number;
  waveStartedAt: number;
  hosts: CountedHost[];
  waived: string[];
  /** The database's time (or the injected clock's). */
  now: number;
}

/**
 * Active rollouts in waves, oldest first (the partial index rollouts_active). Apps' only: a device
 * group change (kind 'group') goes to every host of the group at once, and is never the controller's.
 */
export async function listActiveRollouts(db: Kysely<Database>, limit = 1000): Promise<string[]> {
  const rows = await sql<{ id: string }>`
    select id::text as id from rollouts where state in ('rolling', 'paused') and kind = 'app' order by created_at limit ${limit}`.execute(db);
  return rows.rows.map((r) => r.id);
}

const BAD_STATES = new Set(['exited', 'dead', 'restarting']);

/** What is wrong with the revision's containers in a heartbeat's `running`, or null. */
export function unhealthyIn(running: unknown, app: string, incarnation: number, revision: number): string | null {
  if (!Array.isArray(running)) return null;
  for (const a of running as Array<{ app?: string; incarnation?: number | null; revision?: number | null; containers?: ContainerState[] }>) {
    if (a.app !== app || a.incarnation !== incarnation || a.revision !== revision) continue;
    for (const c of a.containers ?? []) {
      if (BAD_STATES.has(c.state)) return `container ${c.name} ${c.state}`;
      if (c.health === 'unhealthy') return `container ${c.name} unhealthy`;
    }
  }
  return null;
}

export async function loadSnapshot(db: Kysely<Database>, id: string, now?: Date): Promise<RolloutSnapshot | null> {
  const head = await sql<{
    app: string;
    incarnation: string;
    revision: number;
    state: string;
    paused_reason: string | null;
    strategy: unknown;
    wave: number;
    step: number;
    waves: number;
    waived: string[];
    retried: Record<string, string>;
    running: boolean;
    started_at: Date | null;
    now: Date;
  }>`
    select r.app, r.incarnation::text as incarnation, r.revision, r.state, r.paused_reason, r.strategy, r.wave, r.step, r.waived, r.retried,
           coalesce((v.config->>'running')::boolean, true) as running,
           (select count(*)::int from rollout_waves w where w.rollout_id = r.id) as waves,
           (select w.started_at from rollout_waves w where w.rollout_id = r.id and w.wave = r.wave) as started_at,
           coalesce(${now ?? null}::timestamptz, now()) as now
      from rollouts r
      join app_revisions v on v.incarnation = r.incarnation and v.revision = r.revision
     where r.id = ${id}::uuid and r.state in ('rolling', 'paused') and r.kind = 'app'`.execute(db);
  const h = head.rows[0];
  if (!h || h.started_at === null) return null;
  const incarnation = Number(h.incarnation);
  const rows = await sql<{
    wave: number;
    started_at: Date;
    host: string;
    status: string | null;
    error: string | null;
    reported_at: Date | null;
    running: unknown;
  }>`
    select w.wave, w.started_at, c.host, rh.status, rh.error, rh.reported_at,
           case when w.wave = ${h.wave} and rh.status = 'applied' then hs.running end as running
      from rollout_waves w
     cross join lateral unnest(w.counted) as c(host)
      left join rollout_hosts rh on rh.rollout_id = w.rollout_id and rh.host = c.host
      left join hosts hs on hs.id = c.host and w.wave = ${h.wave} and rh.status = 'applied'
     where w.rollout_id = ${id}::uuid and w.wave <= ${h.wave} and w.started_at is not null`.execute(db);
  const hosts: CountedHost[] = rows.rows.map((r) => {
    const retried = h.retried[r.host];
    const since = Math.max(r.started_at.getTime(), retried === undefined ? 0 : Date.parse(retried));
    return {
      host: r.host,
      wave: r.wave,
      since,
      result:
        r.status === null || r.reported_at === null
          ? null
          : { status: r.status as 'applied' | 'failed' | 'superseded', at: r.reported_at.getTime(), error: r.error },
      unhealthy: h.running && r.running !== null ? unhealthyIn(r.running, h.app, incarnation, h.revision) : null,
    };
  });
  return {
    id,
    app: h.app,
    incarnation,
    revision: h.revision,
    state: h.state as 'rolling' | 'paused',
    pausedReason: h.paused_reason as RolloutSnapshot['pausedReason'],
    strategy: rolloutStrategySchema.parse(h.strategy),
    wave: h.wave,
    waves: h.waves,
    step: h.step,
    waveStartedAt: h.started_at.getTime(),
    hosts,
    waived: h.waived,
    now: h.now.getTime(),
  };
}

export interface Applied {
  /** false: the rollout moved since the snapshot (another controller, a command, a newer change): nothing done. */
  applied: boolean;
  rolledBack?: string | null;
}

export const CONTROLLER_ACTOR = 'rollout-controller';

/** One decision, in one transaction, on the rollout as the snapshot saw it. */
export async function applyDecision(
  db: Kysely<Database>,
  snap: RolloutSnapshot,
  decision: Decision,
  found: Array<{ host: string; error: string }>,
  opts: { offlineAfterMissedHeartbeats: number },
): Promise<Applied> {
  return db.transaction().execute(async (trx) => {
    const r: LockedRollout | null = await lockRollout(trx, snap.id);
    if (!r || r.state !== snap.state || r.wave !== snap.wave || r.step !== snap.step) return { applied: false };
    for (const f of found) {
      // A failure the controller saw in the heartbeats: the host's result from now on (until it reports again).
      await sql`
        update rollout_hosts set status = 'failed', error = ${f.error}, reported_at = now()
         where rollout_id = ${snap.id}::uuid and host = ${f.host} and status = 'applied'`.execute(trx);
    }
    switch (decision.kind) {
      case 'wait':
        return { applied: found.length > 0 };
      case 'advance':
        await startWaves(trx, r, decision.to, { offlineAfterMissedHeartbeats: opts.offlineAfterMissedHeartbeats });
        return { applied: true };
      case 'succeed':
        await succeedRollout(trx, r);
        return { applied: true };
      case 'pause':
        await pauseRollout(trx, r, decision.reason);
        return { applied: true };
      case 'fail': {
        if (decision.onFailure === 'pause') {
          await pauseRollout(trx, r, 'budget');
          await trx.updateTable('rollouts').set({ abort_reason: decision.reason }).where('id', '=', r.id).execute();
          return { applied: true };
        }
        const done = await abortRollout(trx, r, {
          reason: decision.reason,
          rollback: true,
          otherwise: 'failed',
          actor: CONTROLLER_ACTOR,
          offlineAfterMissedHeartbeats: opts.offlineAfterMissedHeartbeats,
        });
        return { applied: true, rolledBack: done.rollbackRolloutId };
      }
    }
  });
}

/** Rollouts in waves by state, for the gauge. */
export async function rolloutStateCounts(db: Kysely<Database>): Promise<Record<RolloutState, number>> {
  const rows = await sql<{ state: string; n: number }>`
    select state, count(*)::int as n from rollouts where state is not null and kind = 'app' group by state`.execute(db);
  const out = Object.fromEntries(ROLLOUT_STATES.map((s) => [s, 0])) as Record<RolloutState, number>;
  for (const r of rows.rows) if (r.state in out) out[r.state as RolloutState] = r.n;
  return out;
}

/**
 * Runs `body` on one connection of its own holding advisory lock `key` (session level), waiting for
 * the lock every `pollMs` until `stopped()`. PostgreSQL drops the lock with the session: when the
 * connection dies, `alive()` fails and another replica takes the lock.
 */
export async function withLockSession(
  db: Kysely<Database>,
  key: number,
  pollMs: number,
  stopped: () => boolean,
  sleep: (ms: number) => Promise<void>,
  body: (session: { pid: number; alive(): Promise<void> }) => Promise<void>,
): Promise<void> {
  await db.connection().execute(async (conn) => {
    const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn)).rows[0]?.pid ?? 0;
    let held = false;
    try {
      while (!stopped()) {
        const r = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${key}) as ok`.execute(conn);
        if (r.rows[0]?.ok === true) {
          held = true;
          break;
        }
        await sleep(pollMs);
      }
      if (!held) return;
      await body({
        pid,
        async alive() {
          await sql`select 1`.execute(conn);
        },
      });
    } finally {
      // Back to the pool without the lock (a dead session has lost it already).
      if (held) await sql`select pg_advisory_unlock(${key})`.execute(conn).catch(() => undefined);
    }
  });
}
