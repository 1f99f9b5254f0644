import { posix } from 'node:path';
import type { AppConfig } from '@nebula/contracts';

/**
 * What this host lets an app config do to it. Anyone who can write an app config would otherwise be
 * root on every host that serves the app (a privileged container, the host's disks as devices, `/`
 * or the Docker socket bound in): the host's owner opts in to each, with the worker's environment.
 * Pure: the worker checks a revision with `policyViolations` before it pulls or touches a container.
 */
export interface HostPolicy {
  /** `privileged: true` (WORKER_ALLOW_PRIVILEGED). */
  allowPrivileged: boolean;
  /** `devices`: true = any, a list = only these host device paths, e.g. /dev/ttyUSB0 (WORKER_ALLOW_DEVICES). */
  allowDevices: boolean | string[];
  /** `networks: ["host"]` (WORKER_ALLOW_HOST_NETWORK). */
  allowHostNetwork: boolean;
  /** Absolute paths: a bind's source, normalised, must equal or lie under one (WORKER_ALLOWED_BIND_ROOTS). */
  allowedBindRoots: string[];
  /** A bind that reaches an engine socket, even under an allowed root (WORKER_ALLOW_DOCKER_SOCKET). */
  allowDockerSocket: boolean;
  /** The engine sockets a bind must not reach: DEFAULT_DOCKER_SOCKETS, plus DOCKER_HOST's when it is a unix socket. */
  dockerSockets: string[];
}

/**
 * Whoever holds one of these drives the engine, so holds the host: Docker's (`/var/run` is a link to
 * `/run` on most systems) and containerd's, which Docker runs on.
 */
export const DEFAULT_DOCKER_SOCKETS: readonly string[] = [
  '/run/docker.sock',
  '/var/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/var/run/containerd/containerd.sock',
];

/** Everything refused, no bind root. */
export const DEFAULT_HOST_POLICY: HostPolicy = Object.freeze({
  allowPrivileged: false,
  allowDevices: false,
  allowHostNetwork: false,
  allowedBindRoots: [],
  allowDockerSocket: false,
  dockerSockets: [...DEFAULT_DOCKER_SOCKETS],
});

/**
 * The rules, in the order violations are listed. `pid_host`: no app config field asks for the host's
 * PID namespace (there is no pid field and the runtime never sets PidMode); the rule is kept so that
 * a field added for it is refused by default like the others.
 */
export const RULES = ['privileged', 'devices', 'host_network', 'pid_host', 'bind_mount', 'docker_socket'] as const;
export type Rule = (typeof RULES)[number];

export interface Violation {
  rule: Rule;
  /** The config field: privileged, devices, networks, volumes. */
  field: string;
  /** The offending value, as written in the config. */
  detail: string;
  /** The environment setting that would allow it, e.g. WORKER_ALLOW_PRIVILEGED=true. */
  setting: string;
}

/** An absolute path, lexically normalised (`..` and `.` resolved, no trailing slash), as the engine cleans a bind source. */
export function normalisePath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** `path` is `root` or lies under it (both normalised). */
export function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(root === '/' ? '/' : `${root}/`);
}

/** The value of a list setting once `add` is in it: the current entries first. */
function listSetting(current: readonly string[], add: string): string {
  return [...new Set([...current, add])].join(',');
}

/** Every way the config goes beyond the policy, sorted (rule order, then field and detail), without duplicates. */
export function policyViolations(config: Pick<AppConfig, 'privileged' | 'devices' | 'networks' | 'volumes'>, policy: HostPolicy): Violation[] {
  const out: Violation[] = [];
  if (config.privileged && !policy.allowPrivileged) {
    out.push({ rule: 'privileged', field: 'privileged', detail: 'true', setting: 'WORKER_ALLOW_PRIVILEGED=true' });
  }
  if (policy.allowDevices !== true) {
    const allowed = policy.allowDevices === false ? [] : policy.allowDevices.map(normalisePath);
    for (const d of config.devices) {
      const hostPath = normalisePath(d.split(':')[0] ?? '');
      if (!allowed.includes(hostPath))
        out.push({ rule: 'devices', field: 'devices', detail: d, setting: `WORKER_ALLOW_DEVICES=${listSetting(allowed, hostPath)}` });
    }
  }
  if (config.networks.includes('host') && !policy.allowHostNetwork) {
    out.push({ rule: 'host_network', field: 'networks', detail: 'host', setting: 'WORKER_ALLOW_HOST_NETWORK=true' });
  }
  const roots = policy.allowedBindRoots.map(normalisePath);
  const sockets = policy.dockerSockets.map(normalisePath);
  for (const v of config.volumes) {
    const source = v.split(':')[0] ?? '';
    if (!source.startsWith('/')) continue; // a named volume: the engine's, not the host's files
    const s = normalisePath(source);
    // The source is a socket, or a directory that holds one (`/`, `/var`, `/run`...).
    const reachesSocket = sockets.some((sock) => isUnder(sock, s));
    if (reachesSocket && !policy.allowDockerSocket) {
      out.push({ rule: 'docker_socket', field: 'volumes', detail: v, setting: 'WORKER_ALLOW_DOCKER_SOCKET=true' });
    }
    // The socket itself needs only WORKER_ALLOW_DOCKER_SOCKET; a directory holding it, a root as well.
    if (sockets.includes(s)) continue;
    if (!roots.some((r) => isUnder(s, r))) {
      out.push({ rule: 'bind_mount', field: 'volumes', detail: v, setting: `WORKER_ALLOWED_BIND_ROOTS=${listSetting(roots, s)}` });
    }
  }
  const seen = new Set<string>();
  return out
    .filter((x) => {
      const key = `${x.rule}\0${x.field}\0${x.detail}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => RULES.indexOf(a.rule) - RULES.indexOf(b.rule) || cmp(a.field, b.field) || cmp(a.detail, b.detail));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `refused by this host's policy: privileged (privileged: true; allow with WORKER_ALLOW_PRIVILEGED=true), ...` */
export function refusalText(violations: readonly Violation[]): string {
  return `refused by this host's policy: ${violations.map((v) => `${v.rule} (${v.field}: ${v.detail}; allow with ${v.setting})`).join(', ')}`;
}

/** What the policy allows, for the log at start: `privileged: no, devices: /dev/ttyUSB0, ...`. */
export function describePolicy(policy: HostPolicy): Record<string, string> {
  const yesNo = (b: boolean) => (b ? 'allowed' : 'refused');
  return {
    privileged: yesNo(policy.allowPrivileged),
    devices: typeof policy.allowDevices === 'boolean' ? yesNo(policy.allowDevices) : `only ${policy.allowDevices.join(', ')}`,
    host_network: yesNo(policy.allowHostNetwork),
    bind_mounts: policy.allowedBindRoots.length === 0 ? 'refused' : `under ${policy.allowedBindRoots.join(', ')}`,
    docker_socket: yesNo(policy.allowDockerSocket),
  };
}
