import type { AccessLevel, AppConfig, UserGroupDoc } from '@nebula/contracts';

/**
 * What a caller may do: the decisions, pure. The local admin (from the environment) may do
 * everything; a user may do what the union of its groups allows:
 *
 *   admin                  everything, users and groups included
 *   apps[name] = "ro"      read the app (config without env values, history, rollouts)
 *   apps[name] = "rw"      read it with its env values, and change it ("rw" includes "ro", a fix of
 *                          the original, where a "rw" user could change an app it could not read)
 *   cron_jobs[name]        the same for a cron job (deleting one needs admin, as in the original)
 *   privileged_allowed     a config (of an app or a cron job) that is privileged, has devices, the host network or bind mounts
 *   pruning_allowed        image prunes
 *
 * Lists (app names, hosts) and /status need only a valid login, as in the original.
 */
export type ResourceKind = 'apps' | 'device_groups' | 'cron_jobs';

export interface Permissions {
  admin: boolean;
  pruning_allowed: boolean;
  privileged_allowed: boolean;
  apps: Readonly<Record<string, AccessLevel>>;
  device_groups: Readonly<Record<string, AccessLevel>>;
  cron_jobs: Readonly<Record<string, AccessLevel>>;
}

export const NO_PERMISSIONS: Permissions = Object.freeze({
  admin: false,
  pruning_allowed: false,
  privileged_allowed: false,
  apps: Object.freeze({}),
  device_groups: Object.freeze({}),
  cron_jobs: Object.freeze({}),
});

export const ADMIN_PERMISSIONS: Permissions = Object.freeze({ ...NO_PERMISSIONS, admin: true, pruning_allowed: true, privileged_allowed: true });

const RANK: Record<AccessLevel, number> = { ro: 1, rw: 2 };

function mergeLevels(a: Readonly<Record<string, AccessLevel>>, b: Readonly<Record<string, AccessLevel>>): Record<string, AccessLevel> {
  const out: Record<string, AccessLevel> = { ...a };
  for (const [name, level] of Object.entries(b)) {
    const had = out[name];
    if (had === undefined || RANK[level] > RANK[had]) out[name] = level;
  }
  return out;
}

type GroupRights = Pick<UserGroupDoc, 'admin' | 'pruning_allowed' | 'privileged_allowed' | 'apps' | 'device_groups' | 'cron_jobs'>;

/** The union of the groups' rights: flags OR-ed, per-name levels the highest any group gives. */
export function mergeGroups(groups: readonly GroupRights[]): Permissions {
  let p: Permissions = NO_PERMISSIONS;
  for (const g of groups) {
    p = {
      admin: p.admin || g.admin,
      pruning_allowed: p.pruning_allowed || g.pruning_allowed,
      privileged_allowed: p.privileged_allowed || g.privileged_allowed,
      apps: mergeLevels(p.apps, g.apps),
      device_groups: mergeLevels(p.device_groups, g.device_groups),
      cron_jobs: mergeLevels(p.cron_jobs, g.cron_jobs),
    };
  }
  return p;
}

/** Whether `p` gives at least `level` on the named app (device group, cron job). */
export function allows(p: Permissions, kind: ResourceKind, name: string, level: AccessLevel): boolean {
  if (p.admin) return true;
  const has = Object.hasOwn(p[kind], name) ? p[kind][name] : undefined;
  return has !== undefined && RANK[has] >= RANK[level];
}

export function mayPrune(p: Permissions): boolean {
  return p.admin || p.pruning_allowed;
}

export function mayRunPrivileged(p: Permissions): boolean {
  return p.admin || p.privileged_allowed;
}

/** The fields of a config that make it privileged (sorted; empty: an ordinary config). */
export type PrivilegeFields = Pick<AppConfig, 'privileged' | 'devices' | 'networks' | 'volumes'>;

export function privilegedFields(config: PrivilegeFields): string[] {
  const out: string[] = [];
  if (config.devices.length > 0) out.push('devices');
  if (config.networks.includes('host')) out.push('networks');
  if (config.privileged) out.push('privileged');
  // A source that is a path is a bind mount of the host's files; a name is a volume Docker manages.
  if (config.volumes.some((v) => v.startsWith('/'))) out.push('volumes');
  return out;
}

export const HIDDEN_VALUE = '(hidden)';

/** The config as a caller without "rw" on the app sees it: env names kept, values hidden. */
export function redactEnv<T extends { env_vars: AppConfig['env_vars'] }>(config: T): T {
  const env = config.env_vars;
  if (Array.isArray(env)) return config;
  return { ...config, env_vars: Object.fromEntries(Object.keys(env).map((k) => [k, HIDDEN_VALUE])) };
}
