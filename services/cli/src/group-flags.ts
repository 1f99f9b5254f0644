import { UsageError } from './errors.ts';

/**
 * The flags of `nebula groups create|update`, checked and turned into what the API takes. Pure: the
 * command line is checked completely before anything is sent (a wrong flag is a UsageError, exit 2),
 * and an update's read-modify-write (`--add-member`, `--app-remove`, `--app` merged into the map) is
 * computed here from the group as read.
 */

/** A user, app, device group or cron job name, as the API checks it. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const LEVELS = ['ro', 'rw'] as const;
export type Level = (typeof LEVELS)[number];
export type AccessMap = Record<string, Level>;

/** The group's maps and their flags: `--app web=rw` sets, `--app-remove web` removes. */
export const MAP_FLAGS = { apps: 'app', device_groups: 'device-group', cron_jobs: 'cron-job' } as const;
export type MapField = keyof typeof MAP_FLAGS;
const MAP_FIELDS = Object.keys(MAP_FLAGS) as MapField[];

export const SWITCHES = { admin: 'admin', pruning_allowed: 'pruning-allowed', privileged_allowed: 'privileged-allowed' } as const;
export type SwitchField = keyof typeof SWITCHES;
const SWITCH_FIELDS = Object.keys(SWITCHES) as SwitchField[];

/** The parsed command line's values these flags come from (command-line.ts OPTIONS). */
export interface GroupFlagValues {
  member?: string[] | undefined;
  'add-member'?: string[] | undefined;
  'remove-member'?: string[] | undefined;
  app?: string[] | undefined;
  'app-remove'?: string[] | undefined;
  'device-group'?: string[] | undefined;
  'device-group-remove'?: string[] | undefined;
  'cron-job'?: string[] | undefined;
  'cron-job-remove'?: string[] | undefined;
  admin?: boolean | undefined;
  'no-admin'?: boolean | undefined;
  'pruning-allowed'?: boolean | undefined;
  'no-pruning-allowed'?: boolean | undefined;
  'privileged-allowed'?: boolean | undefined;
  'no-privileged-allowed'?: boolean | undefined;
}

export interface GroupFlags {
  /** `--member`: the whole member list (create; update: replaces it). */
  members?: string[];
  addMembers: string[];
  removeMembers: string[];
  /** `--app name=level`...: entries to set. */
  set: Partial<Record<MapField, AccessMap>>;
  /** `--app-remove name`...: entries to drop (update only). */
  remove: Partial<Record<MapField, string[]>>;
  switches: Partial<Record<SwitchField, boolean>>;
}

export interface GroupDoc {
  group_members: string[];
  apps: AccessMap;
  device_groups: AccessMap;
  cron_jobs: AccessMap;
  admin: boolean;
  pruning_allowed: boolean;
  privileged_allowed: boolean;
}
export type GroupPatch = Partial<GroupDoc>;

function checkName(value: string, flag: string, what: string): string {
  if (!NAME.test(value)) throw new UsageError(`--${flag}: "${value}" is not a valid ${what} name (letters, digits, "_" and "-"; at most 63)`);
  return value;
}

/** `web=rw` -> ["web", "rw"]; anything else is a UsageError naming the flag. */
export function parseAccessPair(value: string, flag: string): [string, Level] {
  const eq = value.lastIndexOf('=');
  if (eq < 0) throw new UsageError(`--${flag} takes <name>=ro or <name>=rw (got "${value}")`);
  const name = value.slice(0, eq);
  const level = value.slice(eq + 1);
  if (!(LEVELS as readonly string[]).includes(level)) throw new UsageError(`--${flag} ${value}: the access must be ro or rw (got "${level}")`);
  return [checkName(name, flag, flag.replace('-', ' ')), level as Level];
}

/** Repeated `--app name=level`: a map; one name given two different levels is a UsageError. */
export function parseAccessMap(values: string[], flag: string): AccessMap {
  const map: AccessMap = {};
  for (const v of values) {
    const [name, level] = parseAccessPair(v, flag);
    const before = map[name];
    if (before !== undefined && before !== level) throw new UsageError(`--${flag} ${name} is given both ${before} and ${level}`);
    map[name] = level;
  }
  return map;
}

/** Repeated names (members, entries to remove): checked, each once, in the order given. */
export function parseNames(values: string[], flag: string, what: string): string[] {
  return [...new Set(values.map((v) => checkName(v, flag, what)))];
}

/** Checks the flags of `groups create` (`update`: the read-modify-write ones too); throws UsageError. */
export function parseGroupFlags(values: GroupFlagValues, mode: 'create' | 'update'): GroupFlags {
  const flags: GroupFlags = { addMembers: [], removeMembers: [], set: {}, remove: {}, switches: {} };
  if (values.member !== undefined) flags.members = parseNames(values.member, 'member', 'user');
  flags.addMembers = parseNames(values['add-member'] ?? [], 'add-member', 'user');
  flags.removeMembers = parseNames(values['remove-member'] ?? [], 'remove-member', 'user');
  if (flags.members !== undefined && (flags.addMembers.length > 0 || flags.removeMembers.length > 0))
    throw new UsageError('--member gives the whole member list: use it without --add-member and --remove-member');
  const both = flags.addMembers.find((m) => flags.removeMembers.includes(m));
  if (both !== undefined) throw new UsageError(`"${both}" is given to both --add-member and --remove-member`);
  for (const field of MAP_FIELDS) {
    const flag = MAP_FLAGS[field];
    const given = values[flag];
    if (given !== undefined) flags.set[field] = parseAccessMap(given, flag);
    const removed = values[`${flag}-remove`];
    if (removed !== undefined) {
      const names = parseNames(removed, `${flag}-remove`, flag.replace('-', ' '));
      const clash = names.find((n) => flags.set[field]?.[n] !== undefined);
      if (clash !== undefined) throw new UsageError(`"${clash}" is given to both --${flag} and --${flag}-remove`);
      flags.remove[field] = names;
    }
  }
  for (const field of SWITCH_FIELDS) {
    const flag = SWITCHES[field];
    if (values[flag] && values[`no-${flag}`]) throw new UsageError(`--${flag} and --no-${flag} contradict each other`);
    if (values[flag]) flags.switches[field] = true;
    else if (values[`no-${flag}`]) flags.switches[field] = false;
  }
  if (mode === 'update' && !changesAnything(flags))
    throw new UsageError('"groups update" needs something to change: --member, --add-member, --remove-member, --app, --app-remove, --admin...');
  return flags;
}

function changesAnything(f: GroupFlags): boolean {
  return (
    f.members !== undefined ||
    f.addMembers.length > 0 ||
    f.removeMembers.length > 0 ||
    Object.keys(f.set).length > 0 ||
    Object.keys(f.remove).length > 0 ||
    Object.keys(f.switches).length > 0
  );
}

/** `groups create`: the fields given (the API defaults the others to empty and false). */
export function groupCreateInput(f: GroupFlags): GroupPatch {
  return { ...(f.members === undefined ? {} : { group_members: f.members }), ...f.set, ...f.switches };
}

/** Whether `groups update` must read the group first: members added or removed, map entries set or removed. */
export function needsCurrent(f: GroupFlags): boolean {
  return f.addMembers.length > 0 || f.removeMembers.length > 0 || Object.keys(f.set).length > 0 || Object.keys(f.remove).length > 0;
}

/**
 * `groups update`: the fields to send, computed from the group as read (`current`, needed when
 * `needsCurrent`). `--app` entries are merged into the group's map and `--app-remove` ones dropped;
 * the API then replaces each map sent. `notes`: what asked for no change (a member removed that is
 * not one), for stderr.
 */
export function groupPatch(f: GroupFlags, current: GroupDoc | null): { patch: GroupPatch; notes: string[] } {
  if (needsCurrent(f) && current === null) throw new Error('internal: this update needs the group as it is');
  const notes: string[] = [];
  const patch: GroupPatch = { ...f.switches };
  if (f.members !== undefined) patch.group_members = f.members;
  else if (current !== null && (f.addMembers.length > 0 || f.removeMembers.length > 0)) {
    for (const m of f.addMembers) if (current.group_members.includes(m)) notes.push(`"${m}" is a member already`);
    for (const m of f.removeMembers) if (!current.group_members.includes(m)) notes.push(`"${m}" is not a member`);
    const kept = current.group_members.filter((m) => !f.removeMembers.includes(m));
    patch.group_members = [...kept, ...f.addMembers.filter((m) => !kept.includes(m))];
  }
  for (const field of MAP_FIELDS) {
    const set = f.set[field];
    const removed = f.remove[field];
    if ((set === undefined && removed === undefined) || current === null) continue;
    const map: AccessMap = { ...current[field], ...set };
    for (const name of removed ?? []) {
      if (map[name] === undefined) notes.push(`${MAP_FLAGS[field].replace('-', ' ')} "${name}" is not in the group`);
      delete map[name];
    }
    patch[field] = map;
  }
  return { patch, notes };
}

/** `db=ro, web=rw` for people (by name). */
export function accessList(map: AccessMap): string {
  return Object.entries(map)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, level]) => `${name}=${level}`)
    .join(', ');
}
