import { parseCronSchedule } from '@nebula/contracts';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLOCK_BACK_FORGET_MS, decideWake, MAX_TIMER_MS, nextDue, timerDelay } from '../src/cron/schedule-decision.ts';

/** When a cron job runs: property tests of the pure decisions (the scheduler only arms timers and starts runs). */

const T0 = Date.UTC(2030, 5, 1, 12, 0, 0);
const schedules = ['*/10 * * * * *', '*/3 * * * * *', '0 * * * * *', '*/5 * * * *', '0 0 * * *', '15,45 30 * * * *'];
const scheduleArb = fc.constantFrom(...schedules);
const zoneArb = fc.constantFrom('UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata');

test('the next run time is strictly after now, and a run time of the schedule', () => {
  fc.assert(
    fc.property(scheduleArb, zoneArb, fc.integer({ min: 0, max: 400 * 86_400_000 }), (text, tz, offset) => {
      const now = T0 + offset;
      const due = nextDue(parseCronSchedule(text), tz, now);
      assert.ok(due !== null && due > now);
      assert.equal(due % 1000, 0);
    }),
  );
});

/**
 * A job's life as the scheduler lives it: armed for `due`, woken at arbitrary times (on time, late,
 * early, the wall clock set back or forward between wakes).
 */
test('properties: at most one run per wake, a late wake runs the one missed run, the next time is after now, nothing runs twice after a clock set back', () => {
  fc.assert(
    fc.property(scheduleArb, zoneArb, fc.array(fc.integer({ min: -2 * 3_600_000, max: 6 * 3_600_000 }), { minLength: 1, maxLength: 30 }), (text, tz, moves) => {
      const s = parseCronSchedule(text);
      const next = (after: number) => nextDue(s, tz, after);
      let now = T0;
      let state = { due: next(now) as number, lastRun: null as number | null };
      // The wall times runs started at.
      const started: number[] = [];
      // Set once the clock went back further than the window behind the last run (the schedule then restarts).
      let forgot = false;
      for (const move of moves) {
        now += move;
        if (state.lastRun !== null && state.lastRun - now > CLOCK_BACK_FORGET_MS) forgot = true;
        const d = decideWake(state, now, next);
        if (d.fire) {
          assert.ok(state.due <= now, 'never before its time');
          started.push(now);
          assert.equal(d.lastRun, now);
        } else {
          assert.ok(now < state.due);
        }
        assert.ok(d.due !== null && d.due > now, 'the next time is strictly after now');
        // A clock set back (within the forget window) never makes a time run again.
        if (!d.fire && state.lastRun !== null && state.lastRun - now <= CLOCK_BACK_FORGET_MS) assert.ok(d.due > state.lastRun);
        state = { due: d.due, lastRun: d.lastRun };
      }
      // Each run starts at a wall time after every earlier run's (a run's container is named by its
      // start second), unless the clock went back beyond the window.
      if (!forgot) for (let i = 1; i < started.length; i++) assert.ok((started[i] ?? 0) > (started[i - 1] ?? 0), 'a later run starts later');
    }),
  );
});

/** What the scheduler's property test found: a late run, then the clock set back to just before it. */
test('a late run, then the clock set back a moment: the times up to that run are not run again', () => {
  const s = parseCronSchedule('*/5 * * * * *');
  const next = (after: number) => nextDue(s, 'UTC', after);
  const late = decideWake({ due: T0 + 5_000, lastRun: null }, T0 + 10_000, next);
  assert.equal(late, { fire: true, due: T0 + 15_000, lastRun: T0 + 10_000 });
  const back = decideWake({ due: late.due as number, lastRun: late.lastRun }, T0 + 9_999, next);
  assert.equal(back, { fire: false, due: T0 + 15_000, lastRun: T0 + 10_000 });
});

test('a wake an hour late for a job due every 10 s: one run, the next 10 s boundary after now', () => {
  const s = parseCronSchedule('*/10 * * * * *');
  const next = (after: number) => nextDue(s, 'UTC', after);
  const d = decideWake({ due: T0 + 10_000, lastRun: T0 }, T0 + 3_600_000 + 3_000, next);
  assert.equal(d, { fire: true, due: T0 + 3_610_000, lastRun: T0 + 3_603_000 });
});

test('a clock set back 30 s after a run: no run, and the time that ran is not due again', () => {
  const s = parseCronSchedule('0 * * * * *');
  const next = (after: number) => nextDue(s, 'UTC', after);
  const d = decideWake({ due: T0 + 60_000, lastRun: T0 }, T0 - 30_000, next);
  assert.equal(d, { fire: false, due: T0 + 60_000, lastRun: T0 });
});

test('timer delays stay within 0 and MAX_TIMER_MS', () => {
  fc.assert(
    fc.property(fc.integer(), fc.integer(), (due, now) => {
      const t = timerDelay(due, now);
      assert.ok(t >= 0 && t <= MAX_TIMER_MS);
    }),
  );
});

test.run();
