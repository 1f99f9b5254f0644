import { type CronSchedule, nextRuns } from '@nebula/contracts';

/**
 * When a job runs next, and what to do when its timer fires: pure (cron-schedule-decision.test.ts).
 *
 *   update ──> due = next(now) ──> timer(min(due - now, MAX_TIMER_MS))
 *                                     │ fires at `now`
 *                 now < due (early: │ clamped timer, clock set back) ──> re-arm, no run
 *                 now ≥ due ────────┴──> run once; due = next(now)   (strictly after now); lastRun = now
 *
 * A timer that fires late (a suspended host, a clock set forward, a busy event loop) runs the one
 * run it missed, never one per missed time: the next due time is computed after `now`, not after
 * the missed one. Timers are short (MAX_TIMER_MS) so a clock set forward is noticed within that.
 * A clock set back re-arms without running again what already ran: the next time is sought after
 * the wall time the last run started at as well (a late run stands for every time up to it: that
 * time counts, not the missed one), unless the clock went back further than CLOCK_BACK_FORGET_MS
 * (then the schedule starts afresh from now, as Vixie cron does for large jumps).
 */

/** The longest one timer waits: a wall-clock jump is noticed within this. */
export const MAX_TIMER_MS = 60_000;
/** A clock set back by more than this forgets the last run's time (the schedule restarts from now). */
export const CLOCK_BACK_FORGET_MS = 3 * 3_600_000;

/** The first run time of the schedule strictly after `after` (ms), or null when it has none. */
export function nextDue(schedule: CronSchedule, timeZone: string, after: number): number | null {
  return nextRuns(schedule, timeZone, after, 1)[0]?.getTime() ?? null;
}

export interface WakeState {
  /** The run time the timer was armed for. */
  due: number;
  /** The wall time the last run started at (null: none yet): every run time up to it counts as run. */
  lastRun: number | null;
}

export interface WakeDecision {
  /** Start a run now (the scheduler still skips it when the previous run is going). */
  fire: boolean;
  /** The next run time to arm for (null: the schedule has no more). */
  due: number | null;
  lastRun: number | null;
}

/** What a timer firing at wall-clock `now` does. `next(after)` is nextDue of the job's schedule. */
export function decideWake(s: WakeState, now: number, next: (after: number) => number | null): WakeDecision {
  if (now < s.due) {
    const anchor = s.lastRun !== null && s.lastRun - now <= CLOCK_BACK_FORGET_MS ? Math.max(now, s.lastRun) : now;
    return { fire: false, due: next(anchor), lastRun: s.lastRun };
  }
  return { fire: true, due: next(now), lastRun: now };
}

/** How long to arm the timer for `due` at `now`: at least 0, at most MAX_TIMER_MS. */
export function timerDelay(due: number, now: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, due - now));
}
