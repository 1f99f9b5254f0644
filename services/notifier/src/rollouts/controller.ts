import type { Database, Kysely } from '@nebula/db';
import type { Logger } from '@nebula/service-kit';
import { applyDecision, listActiveRollouts, loadSnapshot, withLockSession } from '../db/rollouts.ts';
import { decide } from './decide.ts';
import type { RolloutMetrics } from './metrics.ts';

/**
 * The rollout controller: drives rollouts in waves, one notifier replica at a time.
 *
 *   idle ──start()──▶ waiting: pg_try_advisory_lock every lockPollMs, on a connection of its own
 *                          ▲            │ lock taken
 *                          │            ▼
 *     session lost ────────┴──── active: every tickMs, for each active rollout:
 *     (PostgreSQL drops the lock         snapshot ──decide (pure)──▶ apply in one transaction
 *      with the session: a waiting       that re-checks state, wave and step (a stale decision
 *      replica takes over)               changes nothing)
 *   any ──stop()──▶ stopped (the lock released)
 *
 * Its state is all in PostgreSQL, so a replica taking over picks up where the last one stopped: the
 * wave a dead controller had started is in rollout_waves and its message in the outbox (both in the
 * transaction that started it), or neither.
 */
export type ControllerState = 'idle' | 'waiting' | 'active' | 'stopped';

export interface RolloutControllerOptions {
  db: Kysely<Database>;
  log: Logger;
  offlineAfterMissedHeartbeats: number;
  metrics?: RolloutMetrics | undefined;
  /** How often active rollouts are judged (default 1000 ms). */
  tickMs?: number;
  /** How often a waiting replica tries the lock (default 1000 ms). */
  lockPollMs?: number;
  /** The time rollouts are judged at (default: the database's clock). For tests. */
  clock?: (() => Date) | undefined;
}

/** Ticks woken early (poke) are at least this far apart: a stream of results costs a tick per 100 ms at most. */
const MIN_TICK_GAP_MS = 100;

/** Distinct from the migration (727_001), outbox relay (727_002) and retention locks. */
export const CONTROLLER_LOCK_ID = 727_010;

export class RolloutController {
  #o: Required<Omit<RolloutControllerOptions, 'metrics' | 'clock'>> & Pick<RolloutControllerOptions, 'metrics' | 'clock'>;
  #state: ControllerState = 'idle';
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #pid: number | null = null;
  #ticks = 0;

  constructor(o: RolloutControllerOptions) {
    this.#o = { tickMs: 1000, lockPollMs: 1000, ...o };
  }

  get state(): ControllerState {
    return this.#state;
  }

  /** The backend pid of its lock session while it holds the lock (for tests and logs). */
  get sessionPid(): number | null {
    return this.#pid;
  }

  /** Ticks done while active (for tests). */
  get ticks(): number {
    return this.#ticks;
  }

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
  }

  /**
   * Results came in on this replica: while it holds the lock, judge the active rollouts soon (at least
   * MIN_TICK_GAP_MS after the last tick) instead of at the next tick. Without it, a wave's end is seen up
   * to tickMs late. Results written by another replica wait for the tick.
   */
  poke(): void {
    if (this.#state === 'active') this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    this.#state = 'stopped';
  }

  #sleep = (ms: number): Promise<void> => {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wake = null;
        resolve();
      }
      this.#wake = done;
    });
  };

  async #run(): Promise<void> {
    const { db, log } = this.#o;
    let retryMs = 100;
    while (!this.#stopping) {
      this.#state = 'waiting';
      try {
        await withLockSession(
          db,
          CONTROLLER_LOCK_ID,
          this.#o.lockPollMs,
          () => this.#stopping,
          this.#sleep,
          async (session) => {
            this.#state = 'active';
            this.#pid = session.pid;
            retryMs = 100;
            log.info('rollout controller: active on this replica');
            while (!this.#stopping) {
              // Only while the lock is still ours: a dead session has lost it to another replica.
              await session.alive();
              const started = performance.now();
              await this.tick();
              await this.#sleep(this.#o.tickMs);
              const gap = performance.now() - started;
              if (gap < MIN_TICK_GAP_MS && !this.#stopping) await new Promise((r) => setTimeout(r, MIN_TICK_GAP_MS - gap));
            }
          },
        );
      } catch (err) {
        if (!this.#stopping) {
          log.warn({ err }, 'rollout controller: lost its database session; waiting for the lock again');
          await this.#sleep(retryMs);
          retryMs = Math.min(retryMs * 2, 5000);
        }
      } finally {
        this.#pid = null;
      }
    }
    this.#state = 'stopped';
  }

  /** Judges every active rollout once (the loop's body; tests may call it directly). */
  async tick(): Promise<void> {
    const { db, log, metrics } = this.#o;
    this.#ticks++;
    for (const id of await listActiveRollouts(db)) {
      if (this.#stopping) return;
      try {
        const snap = await loadSnapshot(db, id, this.#o.clock?.());
        if (!snap) continue;
        const j = decide(snap);
        if (j.decision.kind === 'wait' && j.found.length === 0) continue;
        const done = await applyDecision(db, snap, j.decision, j.found, { offlineAfterMissedHeartbeats: this.#o.offlineAfterMissedHeartbeats });
        if (!done.applied) continue;
        const d = j.decision;
        if (d.kind === 'advance' || d.kind === 'succeed' || d.kind === 'fail') metrics?.waveFinished((snap.now - snap.waveStartedAt) / 1000);
        if (d.kind === 'fail' && done.rolledBack) metrics?.rolledBack();
        log.info(
          { rollout_id: id, app: snap.app, wave: snap.wave, decision: d.kind, ...(d.kind === 'fail' ? { reason: d.reason } : {}), rollback: done.rolledBack },
          `rollout ${id} of ${snap.app}: ${d.kind === 'advance' ? `wave ${d.to} started` : d.kind}`,
        );
      } catch (err) {
        // One rollout's trouble (a deadlock with a change, a hand-edited row) must not stop the others.
        log.warn({ err, rollout_id: id }, 'rollout controller: could not judge a rollout; trying again at the next tick');
      }
    }
  }
}
