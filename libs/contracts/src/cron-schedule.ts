/**
 * Cron schedules, pure: parse a schedule, test an instant against it, list its next runs in a time
 * zone. Our own small parser rather than a package: the API validates with it and the worker will
 * fire with it, so both must agree exactly, and the whole grammar fits in this file.
 *
 *   [second] minute hour day-of-month month day-of-week
 *
 * Five fields, or six with a leading seconds field (a five-field schedule fires at second 0). Each
 * field is `*`, a number, a range `a-b`, a step `*\/n`, `a-b/n` or `a/n`, or a list of these
 * separated by commas. Months may be named `JAN`..`DEC`, weekdays `SUN`..`SAT` (0 and 7 are Sunday).
 * When both day-of-month and day-of-week are restricted (neither starts with `*`), a day matching
 * either runs, as in Vixie cron and the original's croniter. `@yearly` (`@annually`), `@monthly`,
 * `@weekly`, `@daily` (`@midnight`) and `@hourly` stand for their usual five fields.
 * Not accepted: `L`, `W`, `#` and `?` (croniter's extensions); a schedule that can never run
 * (`0 0 30 2 *`) is refused too.
 *
 * Time zones: a schedule reads wall-clock time in its zone (IANA name; default UTC). On a
 * spring-forward day, a wall-clock time that does not exist does not run; on a fall-back day, the
 * repeated hour runs once (its first occurrence).
 */

export interface CronSchedule {
  /** The text as given (trimmed). */
  source: string;
  seconds: ReadonlySet<number>;
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  daysOfMonth: ReadonlySet<number>;
  months: ReadonlySet<number>;
  /** 0 (Sunday) to 6. */
  daysOfWeek: ReadonlySet<number>;
  /** Whether the day fields were restricted (not starting with `*`): both restricted means either matches. */
  domRestricted: boolean;
  dowRestricted: boolean;
  /** Whether the schedule gave a seconds field. */
  hasSeconds: boolean;
}

/** A schedule that cannot be parsed; `message` says which field and why. */
export class CronScheduleError extends Error {
  override name = 'CronScheduleError';
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** The first name's value (1 for months, 0 for weekdays). */
  nameBase?: number;
}

const FIELDS = {
  second: { name: 'second', min: 0, max: 59 },
  minute: { name: 'minute', min: 0, max: 59 },
  hour: { name: 'hour', min: 0, max: 23 },
  dom: { name: 'day of month', min: 1, max: 31 },
  month: { name: 'month', min: 1, max: 12, names: MONTH_NAMES, nameBase: 1 },
  // 7 is Sunday too; folded to 0 after parsing.
  dow: { name: 'day of week', min: 0, max: 7, names: DAY_NAMES, nameBase: 0 },
} satisfies Record<string, FieldSpec>;

/** The longest a schedule may be: a field list beyond this is a mistake, not a schedule. */
export const MAX_SCHEDULE_LENGTH = 256;

function value(text: string, f: FieldSpec): number {
  const upper = text.toUpperCase();
  const named = f.names?.indexOf(upper) ?? -1;
  if (named >= 0) return named + (f.nameBase ?? 0);
  if (!/^[0-9]{1,2}$/.test(text)) throw new CronScheduleError(`${f.name}: "${text}" is not a number${f.names ? ' or a name' : ''}`);
  const n = Number(text);
  if (n < f.min || n > f.max) throw new CronScheduleError(`${f.name}: ${n} is outside ${f.min}-${f.max}`);
  return n;
}

function parseField(text: string, f: FieldSpec): Set<number> {
  if (text === '') throw new CronScheduleError(`${f.name}: empty`);
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const [range = '', stepText, ...extra] = part.split('/');
    if (extra.length > 0) throw new CronScheduleError(`${f.name}: "${part}" has two steps`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^[0-9]{1,2}$/.test(stepText) || Number(stepText) === 0) throw new CronScheduleError(`${f.name}: step "${stepText}" must be 1-99`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = f.min;
      hi = f.max;
    } else {
      const bounds = range.split('-');
      if (bounds.length > 2) throw new CronScheduleError(`${f.name}: "${range}" is not a range`);
      lo = value(bounds[0] ?? '', f);
      // `a/n` runs from a to the end of the field, as in Vixie cron and croniter.
      hi = bounds.length === 2 ? value(bounds[1] ?? '', f) : stepText !== undefined ? f.max : lo;
      if (hi < lo) throw new CronScheduleError(`${f.name}: range "${range}" runs backwards`);
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Parses a schedule; throws CronScheduleError saying what is wrong. */
export function parseCronSchedule(text: string): CronSchedule {
  if (typeof text !== 'string') throw new CronScheduleError('must be a string');
  const source = text.trim();
  if (source.length > MAX_SCHEDULE_LENGTH) throw new CronScheduleError(`longer than ${MAX_SCHEDULE_LENGTH} characters`);
  const expanded = source.startsWith('@') ? MACROS[source.toLowerCase()] : source;
  if (expanded === undefined) throw new CronScheduleError(`unknown macro "${source}" (known: ${Object.keys(MACROS).join(', ')})`);
  const parts = expanded.split(/\s+/).filter((p) => p !== '');
  if (parts.length !== 5 && parts.length !== 6) {
    throw new CronScheduleError(`${parts.length} fields: a schedule has 5 (minute hour day-of-month month day-of-week), or 6 with a leading second`);
  }
  const hasSeconds = parts.length === 6;
  const [sec, min, hour, dom, month, dow] = hasSeconds ? parts : ['0', ...parts];
  const daysOfWeek = parseField(dow ?? '', FIELDS.dow);
  if (daysOfWeek.delete(7)) daysOfWeek.add(0);
  const s: CronSchedule = {
    source,
    seconds: parseField(sec ?? '', FIELDS.second),
    minutes: parseField(min ?? '', FIELDS.minute),
    hours: parseField(hour ?? '', FIELDS.hour),
    daysOfMonth: parseField(dom ?? '', FIELDS.dom),
    months: parseField(month ?? '', FIELDS.month),
    daysOfWeek,
    domRestricted: !(dom ?? '').startsWith('*'),
    dowRestricted: !(dow ?? '').startsWith('*'),
    hasSeconds,
  };
  // A day of month that no chosen month has (30 February, 31 April) never runs, unless weekdays also can.
  if (s.domRestricted && !s.dowRestricted) {
    const possible = [...s.months].some((m) => [...s.daysOfMonth].some((d) => d <= (DAYS_IN_MONTH[m - 1] ?? 31)));
    if (!possible) throw new CronScheduleError('day of month: no chosen month has that day, so the schedule never runs');
  }
  return s;
}

/** Whether `text` is a schedule parseCronSchedule accepts. */
export function isValidCronSchedule(text: string): boolean {
  try {
    parseCronSchedule(text);
    return true;
  } catch (err) {
    if (err instanceof CronScheduleError) return false;
    throw err;
  }
}

/** Wall-clock fields, as read in a zone. */
export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 (Sunday) to 6. */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether `tz` is a time zone this runtime knows (an IANA name such as "Europe/Paris", or "UTC"). */
export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > 64) return false;
  try {
    formatter(tz);
    return true;
  } catch (err) {
    if (err instanceof RangeError) return false;
    throw err;
  }
}

/** The wall clock in `timeZone` at the instant `ms` (whole seconds). */
export function wallClock(ms: number, timeZone: string): WallClock {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const year = parts.year ?? 0;
  const month = parts.month ?? 1;
  const day = parts.day ?? 1;
  return {
    year,
    month,
    day,
    hour: parts.hour ?? 0,
    minute: parts.minute ?? 0,
    second: parts.second ?? 0,
    weekday: new Date(Date.UTC(year, month - 1, day)).getUTCDay(),
  };
}

function dayMatches(s: CronSchedule, day: number, weekday: number): boolean {
  const dom = s.daysOfMonth.has(day);
  const dow = s.daysOfWeek.has(weekday);
  if (s.domRestricted && s.dowRestricted) return dom || dow;
  return dom && dow;
}

/** Whether the wall-clock time matches the schedule. */
export function matchesWallClock(s: CronSchedule, w: WallClock): boolean {
  return s.seconds.has(w.second) && s.minutes.has(w.minute) && s.hours.has(w.hour) && s.months.has(w.month) && dayMatches(s, w.day, w.weekday);
}

/** Whether the instant `ms` (its whole second) is a run time of the schedule in `timeZone`. */
export function matchesSchedule(s: CronSchedule, ms: number, timeZone = 'UTC'): boolean {
  return matchesWallClock(s, wallClock(Math.floor(ms / 1000) * 1000, timeZone));
}

/**
 * The first wall-clock time after `naive` (a wall-clock time coded as if UTC, in ms) that the
 * schedule matches; null when none is found within `limitYears`. It skips whole months, days, hours
 * and minutes that cannot match, so a year's search takes at most a few hundred steps.
 */
function nextNaive(s: CronSchedule, naive: number, limitYears: number): number | null {
  let t = Math.floor(naive / 1000) * 1000 + 1000;
  const endYear = new Date(t).getUTCFullYear() + limitYears;
  for (;;) {
    const d = new Date(t);
    const year = d.getUTCFullYear();
    if (year > endYear) return null;
    const month = d.getUTCMonth() + 1;
    if (!s.months.has(month)) {
      t = Date.UTC(year, month, 1);
      continue;
    }
    if (!dayMatches(s, d.getUTCDate(), d.getUTCDay())) {
      t = Date.UTC(year, month - 1, d.getUTCDate() + 1);
      continue;
    }
    if (!s.hours.has(d.getUTCHours())) {
      t = Date.UTC(year, month - 1, d.getUTCDate(), d.getUTCHours() + 1);
      continue;
    }
    if (!s.minutes.has(d.getUTCMinutes())) {
      t = Date.UTC(year, month - 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes() + 1);
      continue;
    }
    if (!s.seconds.has(d.getUTCSeconds())) {
      t += 1000;
      continue;
    }
    return t;
  }
}

function naiveOf(w: WallClock): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
}

/** The instants whose wall clock in `timeZone` is `naive` (none in a gap, two in a fall-back hour), earliest first. */
function instantsOf(naive: number, timeZone: string): number[] {
  const out = new Set<number>();
  // A zone's offset changes at most once or twice a day: the offsets a day before, at and a day after
  // `naive` include both sides of any change near it, so trying each finds every instant.
  for (const probe of [naive - 86_400_000, naive, naive + 86_400_000]) {
    const guess = naive - (naiveOf(wallClock(probe, timeZone)) - probe);
    if (naiveOf(wallClock(guess, timeZone)) === naive) out.add(guess);
  }
  return [...out].sort((a, b) => a - b);
}

/** How far ahead a search goes: a schedule that matches is found within this (leap days on a weekday pass in 28 years). */
const SEARCH_YEARS = 30;

/**
 * The next `n` run times of the schedule strictly after `from`, as instants (ms, whole seconds),
 * in increasing order; fewer when the schedule has no more within the search horizon.
 */
export function nextRuns(schedule: CronSchedule | string, timeZone: string, from: Date | number, n: number): Date[] {
  const s = typeof schedule === 'string' ? parseCronSchedule(schedule) : schedule;
  const out: Date[] = [];
  let after = typeof from === 'number' ? from : from.getTime();
  let naive = naiveOf(wallClock(Math.floor(after / 1000) * 1000, timeZone));
  while (out.length < n) {
    const next = nextNaive(s, naive, SEARCH_YEARS);
    if (next === null) break;
    naive = next;
    // First occurrence only: after the first, the rest of a repeated hour is behind `naive` already.
    const at = instantsOf(next, timeZone).find((i) => i > after);
    if (at === undefined) continue;
    out.push(new Date(at));
    after = at;
  }
  return out;
}
