import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  cronJobConfigSchema,
  cronJobPatchSchema,
  isValidCronSchedule,
  isValidTimeZone,
  matchesSchedule,
  nextRuns,
  parseCronSchedule,
  wallClock,
} from '../src/index.ts';

/** A field as people write them: `*`, a value, a range, a step, or a list of those. */
function fieldArb(min: number, max: number): fc.Arbitrary<string> {
  const v = fc.integer({ min, max });
  const range = fc.tuple(v, v).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`);
  const step = fc.tuple(fc.constantFrom('*', `${min}`, `${min}-${max}`), fc.integer({ min: 1, max: Math.max(1, max - min) })).map(([r, s]) => `${r}/${s}`);
  const single = fc.oneof(v.map(String), range, step);
  return fc.oneof(
    fc.constant('*'),
    single,
    fc.array(single, { minLength: 1, maxLength: 3 }).map((l) => l.join(',')),
  );
}

const scheduleArb = fc
  .tuple(fc.boolean(), fieldArb(0, 59), fieldArb(0, 59), fieldArb(0, 23), fieldArb(1, 28), fieldArb(1, 12), fieldArb(0, 7))
  .map(([secs, s, mi, h, dom, mo, dow]) => (secs ? [s, mi, h, dom, mo, dow] : [mi, h, dom, mo, dow]).join(' '));

const zones = fc.constantFrom('UTC', 'Europe/Paris', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Pacific/Chatham');
/** Instants between 2020 and 2035 (whole and fractional seconds). */
const fromArb = fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2035, 0, 1) });

test('every generated schedule parses', () => {
  fc.assert(fc.property(scheduleArb, (s) => isValidCronSchedule(s)));
});

test('next runs: strictly increasing, all after `from`, each matching the schedule in its zone', () => {
  fc.assert(
    fc.property(scheduleArb, zones, fromArb, (text, tz, from) => {
      const s = parseCronSchedule(text);
      const runs = nextRuns(s, tz, from, 5);
      let prev = from;
      for (const r of runs) {
        assert.ok(r.getTime() > prev, `${text} in ${tz}: ${r.toISOString()} is not after ${new Date(prev).toISOString()}`);
        assert.is(r.getTime() % 1000, 0, 'whole seconds');
        assert.ok(matchesSchedule(s, r.getTime(), tz), `${text} in ${tz}: ${r.toISOString()} does not match`);
        prev = r.getTime();
      }
      // Day of month at most 28 and a month is always chosen: these schedules always run again.
      assert.is(runs.length, 5);
    }),
    { numRuns: 300 },
  );
});

test('in UTC no run is skipped: every matching second between `from` and the last run is listed', () => {
  // Minute-level and second-level schedules, checked second by second over the span they cover.
  const dense = fc.tuple(fc.boolean(), fieldArb(0, 59), fieldArb(0, 59)).map(([secs, a, b]) => (secs ? `${a} ${b} * * * *` : `${a} * * * *`));
  fc.assert(
    fc.property(dense, fromArb, (text, from) => {
      const s = parseCronSchedule(text);
      const runs = nextRuns(s, 'UTC', from, 4).map((d) => d.getTime());
      const last = runs.at(-1) ?? from;
      const brute: number[] = [];
      for (let t = Math.floor(from / 1000) * 1000 + 1000; t <= last; t += 1000) if (matchesSchedule(s, t, 'UTC')) brute.push(t);
      assert.equal(runs, brute);
    }),
    { numRuns: 60 },
  );
});

test('a five-field schedule runs at second 0; a six-field one reads its first field as seconds', () => {
  const from = Date.UTC(2030, 4, 6, 10, 0, 30);
  assert.equal(
    nextRuns('*/15 * * * *', 'UTC', from, 2).map((d) => d.toISOString()),
    ['2030-05-06T10:15:00.000Z', '2030-05-06T10:30:00.000Z'],
  );
  assert.equal(
    nextRuns('*/10 * * * * *', 'UTC', from, 3).map((d) => d.toISOString()),
    ['2030-05-06T10:00:40.000Z', '2030-05-06T10:00:50.000Z', '2030-05-06T10:01:00.000Z'],
  );
});

test('time zones: 09:00 in Paris is 07:00 UTC in summer and 08:00 in winter; a skipped hour does not run', () => {
  assert.equal(nextRuns('0 9 * * *', 'Europe/Paris', Date.UTC(2030, 6, 1), 1)[0]?.toISOString(), '2030-07-01T07:00:00.000Z');
  assert.equal(nextRuns('0 9 * * *', 'Europe/Paris', Date.UTC(2030, 0, 1), 1)[0]?.toISOString(), '2030-01-01T08:00:00.000Z');
  // 31 March 2030: Paris goes from 02:00 to 03:00, so 02:30 does not exist that day.
  const runs = nextRuns('30 2 * * *', 'Europe/Paris', Date.UTC(2030, 2, 30, 12), 2).map((d) => d.toISOString());
  assert.equal(runs, ['2030-04-01T00:30:00.000Z', '2030-04-02T00:30:00.000Z']);
  // 27 October 2030: 02:30 happens twice in Paris; it runs once.
  const fall = nextRuns('30 2 * * *', 'Europe/Paris', Date.UTC(2030, 9, 26, 12), 2).map((d) => d.toISOString());
  assert.equal(fall, ['2030-10-27T00:30:00.000Z', '2030-10-28T01:30:00.000Z']);
});

test('day of month and day of week: either matches when both are restricted; names and 7 for Sunday', () => {
  const s = parseCronSchedule('0 0 13 * FRI');
  // 2030-09-13 is a Friday; 2030-09-06 a Friday; 2030-09-01 a Sunday.
  assert.ok(matchesSchedule(s, Date.UTC(2030, 8, 6), 'UTC'));
  assert.ok(matchesSchedule(s, Date.UTC(2030, 8, 13), 'UTC'));
  assert.not.ok(matchesSchedule(s, Date.UTC(2030, 8, 7), 'UTC'));
  assert.ok(matchesSchedule(parseCronSchedule('0 0 * jan-mar 7'), Date.UTC(2030, 0, 6), 'UTC'));
  assert.ok(matchesSchedule(parseCronSchedule('@daily'), Date.UTC(2030, 0, 6), 'UTC'));
  assert.equal(nextRuns('0 0 29 2 *', 'UTC', Date.UTC(2030, 0, 1), 1)[0]?.toISOString(), '2032-02-29T00:00:00.000Z');
});

test('bad schedules are refused, saying why', () => {
  for (const bad of [
    '',
    '* * * *',
    '* * * * * * *',
    '60 * * * *',
    '* 24 * * *',
    '* * 0 * *',
    '* * * 13 *',
    '* * * * 8',
    '5-1 * * * *',
    '*/0 * * * *',
    '1/2/3 * * * *',
    'a * * * *',
    '0 0 L * *',
    '0 0 * * 1#2',
    '0 0 30 2 *',
    '0 0 31 4,6 *',
    '@reboot',
    `${'1,'.repeat(200)}1 * * * *`,
  ]) {
    assert.not.ok(isValidCronSchedule(bad), `"${bad}" accepted`);
  }
  assert.throws(() => parseCronSchedule('61 * * * *'), /minute: 61 is outside 0-59/);
  assert.ok(isValidCronSchedule('0 0 30 2 1'), 'a day of week makes it possible');
});

test('time zones: IANA names and UTC known, others refused', () => {
  assert.ok(isValidTimeZone('UTC'));
  assert.ok(isValidTimeZone('Europe/Paris'));
  assert.not.ok(isValidTimeZone('Mars/Olympus'));
  assert.not.ok(isValidTimeZone(''));
  assert.is(wallClock(Date.UTC(2030, 0, 1, 12), 'Asia/Kolkata').hour, 17);
});

test('job config: defaults (networks as apps), schedule and zone checked, patch partial', () => {
  const c = cronJobConfigSchema.parse({ docker_image: 'busybox:1.36', schedule: '*/5 * * * *' });
  assert.equal(c, {
    docker_image: 'busybox:1.36',
    schedule: '*/5 * * * *',
    env_vars: {},
    running: true,
    networks: ['nebula', 'bridge'],
    volumes: [],
    devices: [],
    privileged: false,
    timezone: 'UTC',
    timeout_seconds: 3600,
  });
  assert.not.ok(cronJobConfigSchema.safeParse({ docker_image: 'busybox', schedule: 'nope' }).success);
  assert.not.ok(cronJobConfigSchema.safeParse({ docker_image: 'busybox', schedule: '* * * * *', timezone: 'Nowhere/Else' }).success);
  assert.not.ok(cronJobConfigSchema.safeParse({ docker_image: 'busybox', schedule: '* * * * *', timeout_seconds: 0 }).success);
  assert.not.ok(cronJobConfigSchema.safeParse({ docker_image: 'busybox', schedule: '* * * * *', starting_ports: [80] }).success, 'no ports');
  assert.equal(cronJobPatchSchema.parse({ running: false }), { running: false });
});

test.run();
