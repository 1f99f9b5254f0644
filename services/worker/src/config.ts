import { readFileSync } from 'node:fs';
import { appNameSchema, deviceGroupNameSchema, hostIdSchema } from '@nebula/contracts';
import { ConfigError, envVar } from '@nebula/service-kit';
import { z } from 'zod';
import { DEFAULT_DOCKER_SOCKETS, type HostPolicy, normalisePath } from './planner/host-policy.ts';

/** `APP_NAME=a,b,c`: the apps this host serves (its "pod"). Empty or unset: none yet. */
const appList = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  )
  .pipe(z.array(appNameSchema).refine((a) => new Set(a).size === a.length, 'an app is listed twice'));

/** `DEVICE_GROUP=g`: the device group whose apps and cron jobs this host follows live. Empty or unset: none. */
const deviceGroup = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s.trim() === '' ? undefined : s.trim()))
  .pipe(deviceGroupNameSchema.optional());

/** Host ids are part of subjects and container labels: a longer one is refused, never cut. */
const HOST_ID_MAX = 63;
const hostIdEnv = z.string().max(HOST_ID_MAX, `is longer than ${HOST_ID_MAX} characters (host ids are not cut: choose a shorter one)`).pipe(hostIdSchema);

/** Comma-separated absolute paths, normalised, each once; an issue naming a relative one. */
function absolutePaths(s: string, problem: (path: string) => string, ctx: z.RefinementCtx): string[] {
  const list = s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
  for (const p of list) if (!p.startsWith('/')) ctx.addIssue({ code: 'custom', message: problem(p) });
  return [...new Set(list.map(normalisePath))];
}

/** Empty or unset: none. */
const bindRoots = z
  .string()
  .default('')
  .transform((s, ctx) => absolutePaths(s, (p) => `"${p}" is not an absolute path (bind roots are absolute host paths, comma-separated)`, ctx));

const TRUE_WORDS = new Set(['true', '1', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'no']);
/** `true` (any device), `false` (none) or a comma-separated list of host device paths. */
const deviceSetting = z
  .string()
  .default('false')
  .transform((s, ctx): boolean | string[] => {
    const word = s.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return absolutePaths(s, (p) => `"${p}" is neither true, false nor an absolute host device path (e.g. /dev/ttyUSB0; several comma-separated)`, ctx);
  });

const seconds = (fallback: number, min = 0) =>
  z.coerce
    .number()
    .min(min)
    .max(86_400 * 365)
    .default(fallback);

export const workerEnvSchema = z.object({
  APP_NAME: appList,
  /** The device group to follow (with or without APP_NAME: the host serves both, APP_NAME's apps whatever the group says). */
  DEVICE_GROUP: deviceGroup,
  /** Unset: the machine id (see resolveHostId), never the hostname (a container's changes at every run). */
  HOST_ID: hostIdEnv.optional(),
  /** Where the machine id is read from when HOST_ID is unset: the host's, mounted into a worker container. */
  MACHINE_ID_FILE: z.string().default('/etc/machine-id'),
  /**
   * With APP_NAME empty and no DEVICE_GROUP, the worker refuses to start while it owns containers,
   * unless this is true (with a DEVICE_GROUP, the group's message decides what is unserved).
   */
  REMOVE_UNSERVED: envVar.bool(false),
  /** The NATS servers, comma-separated (the cluster's, as the join command names them): tried in a random order. */
  NATS_URL: envVar.urlList('nats://127.0.0.1:4222'),
  /** PEM file of the CA that signed the NATS servers' certificates (TLS; required outside loopback unless tls:// with a public CA). */
  NATS_TLS_CA: z.string().optional(),
  /** This host's bus identity (key seed, JWT, pinned control plane key): written at join, mode 600. */
  NEBULA_CREDENTIALS_FILE: z.string().default('/var/lib/nebula/credentials.json'),
  /** The control plane's API: where a host joins, and renews (default: the URL it joined). */
  NEBULA_URL: z.url().optional(),
  /** A join token (`nebula hosts join-token create`): needed once, when there is no credentials file yet. */
  NEBULA_JOIN_TOKEN: z.string().optional(),
  /** The deadline of each call to the control plane's API (join, renew). */
  NEBULA_API_TIMEOUT_SECONDS: seconds(10, 0.1),
  DOCKER_HOST: z.string().default('unix:///var/run/docker.sock'),
  /** Registry credentials, as the original; without them ~/.docker/config.json is used if present. */
  REGISTRY_AUTH_USER: z.string().optional(),
  REGISTRY_AUTH_PASSWORD: z.string().optional(),
  /** The registry the credentials are for (default Docker Hub). */
  REGISTRY_HOST: z.string().optional(),
  /** A random delay of up to this many seconds before a restart, to spread a fleet's restarts. */
  MAX_RESTART_WAIT_IN_SECONDS: seconds(0),
  HEARTBEAT_INTERVAL_SECONDS: seconds(5, 0.1),
  /**
   * How often the host's usage (CPU, memory, the engine's disk, each container's CPU and memory) is
   * gathered for reports; heartbeats carry the latest sample. 0: no reports.
   */
  WORKER_REPORT_INTERVAL_SECONDS: seconds(60),
  /** The server forgets the consumers of a host gone for this long. */
  CONSUMER_INACTIVE_THRESHOLD_HOURS: seconds(72, 0.001),
  /** SIGTERM, then SIGKILL after this many seconds. */
  STOP_TIMEOUT_SECONDS: seconds(5),
  /** How long an action may go without `working()` before its message is redelivered. */
  ACK_WAIT_SECONDS: seconds(30, 1),
  HEALTH_CHECK_INTERVAL_SECONDS: seconds(10, 0.1),
  /** The deadline of one Docker engine call; a stop or restart also gets its stop timeout. */
  ENGINE_CALL_TIMEOUT_SECONDS: seconds(30, 0.1),
  /** An image pull that makes no progress for this long is aborted (retryable). */
  PULL_STALL_TIMEOUT_SECONDS: seconds(60, 0.1),
  /** A whole convergence (pull, plan, apply) still running after this long is aborted (retryable). */
  CONVERGE_TIMEOUT_SECONDS: seconds(1800, 0.1),
  /** A convergence without progress for this long gives way to a newer revision waiting. */
  STUCK_AFTER_SECONDS: seconds(60, 0.1),
  /** A rolled container without healthcheck must stay up this long before the next one. */
  ROLL_SETTLE_SECONDS: seconds(2),
  /**
   * After every apply that starts containers, they are watched this long: one that exits, restarts
   * or turns unhealthy meanwhile puts the previous revision's containers back (failed, not retried). 0: off.
   */
  WORKER_SETTLE_SECONDS: seconds(10),
  /** Every served app is re-planned against its last applied revision this often (drift repair). */
  RECONCILE_INTERVAL_SECONDS: seconds(30, 0.1),
  /** A reconcile that fails is tried again after twice the wait each time, up to this. */
  RECONCILE_MAX_BACKOFF_SECONDS: seconds(300, 0.1),
  /** Containers one app may have on one host; a config that yields more fails (permanent). */
  MAX_CONTAINERS_PER_APP: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Containers created and started at the same time by an all-at-once apply. */
  MAX_PARALLEL_STARTS: z.coerce.number().int().min(1).max(1_000).default(8),
  /** An unhealthy container is restarted after the health check interval, then twice as late each time, up to this. */
  UNHEALTHY_RESTART_MAX_BACKOFF_SECONDS: seconds(300, 0.1),
  /** After a successful apply, remove the app's images no longer used (the previous one is kept for rollback). */
  REMOVE_OLD_IMAGES: envVar.bool(true),
  /** Host policy (see README "Host policy"): what an app config may do to this host. All refused by default. */
  WORKER_ALLOW_PRIVILEGED: envVar.bool(false),
  /** `true` (any), `false` (none) or the host device paths allowed, comma-separated (`/dev/ttyUSB0,/dev/dri/renderD128`). */
  WORKER_ALLOW_DEVICES: deviceSetting,
  WORKER_ALLOW_HOST_NETWORK: envVar.bool(false),
  /** Absolute paths, comma-separated: a bind mount's source must be one of them or lie under one. Empty: no bind mount. */
  WORKER_ALLOWED_BIND_ROOTS: bindRoots,
  /** A bind of the engine's socket (or of a directory holding it: `/`, `/var`, `/run`...), even under an allowed root. */
  WORKER_ALLOW_DOCKER_SOCKET: envVar.bool(false),
  METRICS_PORT: envVar.port(8081),
  LOG_LEVEL: envVar.logLevel(),
});
export type WorkerEnv = z.output<typeof workerEnvSchema>;

/**
 * HOST_ID, else the machine id (`/etc/machine-id`, or MACHINE_ID_FILE): stable across restarts and
 * re-creations of a worker container, unlike its hostname. Fails, naming both variables, when
 * neither gives a valid id.
 */
export function resolveHostId(env: Pick<WorkerEnv, 'HOST_ID' | 'MACHINE_ID_FILE'>): string {
  if (env.HOST_ID !== undefined) return env.HOST_ID;
  let raw: string;
  try {
    raw = readFileSync(env.MACHINE_ID_FILE, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(
      `HOST_ID is not set and the machine id cannot be read from ${env.MACHINE_ID_FILE} (${(err as NodeJS.ErrnoException).code ?? 'error'}): set HOST_ID, or MACHINE_ID_FILE to the host's machine-id`,
      ['HOST_ID', 'MACHINE_ID_FILE'],
    );
  }
  const parsed = hostIdEnv.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `HOST_ID is not set and the machine id in ${env.MACHINE_ID_FILE} is not a valid host id (${parsed.error.issues[0]?.message ?? 'invalid'}): set HOST_ID`,
      ['HOST_ID', 'MACHINE_ID_FILE'],
    );
  }
  return parsed.data;
}

/**
 * The host policy of the environment. The engine's own socket (DOCKER_HOST, when a unix socket
 * elsewhere than usual) counts as a Docker socket too.
 */
export function hostPolicyFromEnv(
  env: Pick<
    WorkerEnv,
    | 'WORKER_ALLOW_PRIVILEGED'
    | 'WORKER_ALLOW_DEVICES'
    | 'WORKER_ALLOW_HOST_NETWORK'
    | 'WORKER_ALLOWED_BIND_ROOTS'
    | 'WORKER_ALLOW_DOCKER_SOCKET'
    | 'DOCKER_HOST'
  >,
): HostPolicy {
  const sockets = [...DEFAULT_DOCKER_SOCKETS];
  if (env.DOCKER_HOST.startsWith('unix://')) {
    const path = env.DOCKER_HOST.slice('unix://'.length);
    if (path.startsWith('/')) sockets.push(normalisePath(path));
  }
  return {
    allowPrivileged: env.WORKER_ALLOW_PRIVILEGED,
    allowDevices: env.WORKER_ALLOW_DEVICES,
    allowHostNetwork: env.WORKER_ALLOW_HOST_NETWORK,
    allowedBindRoots: env.WORKER_ALLOWED_BIND_ROOTS,
    allowDockerSocket: env.WORKER_ALLOW_DOCKER_SOCKET,
    dockerSockets: [...new Set(sockets)],
  };
}
