/**
 * The names and addresses of one run of simulated hosts, pure. Every name a run creates outside its
 * own folder (network namespaces, links) carries the run's id, so a run's leftovers are found, and
 * removed, by that id alone.
 */

/**
 * Who runs simulated hosts. Each family has names and a network of its own, so one family's
 * cleanup never takes another's (the end-to-end tests' hosts and `npm start`'s local fleet).
 */
export interface HostFamily {
  /** Start of every namespace and link name (2-4 lowercase letters). */
  prefix: string;
  /** Start of the run folder's name in the temporary directory: `<dirPrefix>-<owner pid>-<id>`. */
  dirPrefix: string;
  /** The second octet of the family's addresses: `10.<network>.<subnet>.0/24`. */
  network: number;
}

export const FAMILIES = {
  /** The end-to-end harness, the benchmarks and other tests (`startFleet` of @nebula/test-kit). */
  tests: { prefix: 'nbt', dirPrefix: 'nebula-fleet', network: 231 },
  /** `FLEET_HOSTS=N npm start`. */
  local: { prefix: 'nbf', dirPrefix: 'nebula-local-fleet', network: 232 },
} as const satisfies Record<string, HostFamily>;

/** Linux's limit on an interface name (IFNAMSIZ - 1). */
export const MAX_LINK_NAME = 15;
/** Hosts get `.11` .. `.250` of their /24. */
export const MAX_HOSTS = 240;
const ID_LENGTH = 5;
const ID_RE = /^[a-z0-9]{5}$/;
const PREFIX_RE = /^[a-z]{2,4}$/;
/** Subnets a run may pick (the third octet). */
export const SUBNETS = { min: 10, max: 249 } as const;

export function isRunId(id: string): boolean {
  return ID_RE.test(id);
}

/** A random run id: 5 characters of [a-z0-9]. */
export function newRunId(random: () => number = Math.random): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let id = '';
  for (let i = 0; i < ID_LENGTH; i++) id += alphabet[Math.floor(random() * alphabet.length) % alphabet.length];
  return id;
}

export interface RunNames {
  id: string;
  bridge: string;
  gateway: string;
  /** The run's folder name (in the temporary directory). */
  dirName: string;
  netns(n: number): string;
  veth(n: number): string;
  address(n: number): string;
}

export function runNames(family: HostFamily, id: string, subnet: number, ownerPid: number): RunNames {
  if (!PREFIX_RE.test(family.prefix)) throw new Error(`host family prefix "${family.prefix}" is not 2-4 lowercase letters`);
  if (!isRunId(id)) throw new Error(`run id "${id}" is not 5 characters of [a-z0-9]`);
  if (!Number.isInteger(subnet) || subnet < SUBNETS.min || subnet > SUBNETS.max) throw new Error(`subnet ${subnet} is outside ${SUBNETS.min}..${SUBNETS.max}`);
  const host = (n: number) => {
    if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new Error(`host number ${n} is outside 1..${MAX_HOSTS}`);
    return n;
  };
  const base = `${family.prefix}${id}`;
  return {
    id,
    bridge: base,
    gateway: `10.${family.network}.${subnet}.1`,
    dirName: `${family.dirPrefix}-${ownerPid}-${id}`,
    netns: (n) => `${base}h${host(n)}`,
    veth: (n) => `${base}v${host(n)}`,
    address: (n) => `10.${family.network}.${subnet}.${10 + host(n)}`,
  };
}

/** The owner pid and run id of a run folder's name, or null when it is not one of the family's. */
export function parseRunDir(family: HostFamily, entry: string): { pid: number; id: string } | null {
  if (!entry.startsWith(`${family.dirPrefix}-`)) return null;
  const m = /^(\d+)-([a-z0-9]{5})$/.exec(entry.slice(family.dirPrefix.length + 1));
  if (!m?.[1] || !m[2]) return null;
  return { pid: Number(m[1]), id: m[2] };
}

/**
 * The run id in a namespace or link name of the family (`<prefix><id>`, `<prefix><id>h<n>`,
 * `<prefix><id>v<n>`), or null when the name is not one of the family's.
 */
export function runIdOfName(family: HostFamily, name: string): string | null {
  if (!name.startsWith(family.prefix)) return null;
  const m = /^([a-z0-9]{5})(?:[hv][1-9]\d*)?$/.exec(name.slice(family.prefix.length));
  return m?.[1] ?? null;
}

/**
 * A free /24 of the family's network: a third octet no address in `used` (dotted IPv4 addresses of
 * the machine) already has, picked at random; null when every one is taken.
 */
export function pickSubnet(family: HostFamily, used: readonly string[], random: () => number = Math.random): number | null {
  const taken = new Set<number>();
  const start = `10.${family.network}.`;
  for (const a of used) {
    if (!a.startsWith(start)) continue;
    const third = Number(a.slice(start.length).split('.')[0]);
    if (Number.isInteger(third)) taken.add(third);
  }
  const free: number[] = [];
  for (let s = SUBNETS.min; s <= SUBNETS.max; s++) if (!taken.has(s)) free.push(s);
  if (free.length === 0) return null;
  return free[Math.floor(random() * free.length) % free.length] ?? null;
}

/** The IPv4 addresses in `ip -4 -o addr show` output. */
export function parseIpAddrs(output: string): string[] {
  return [...output.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1] ?? '').filter(Boolean);
}
