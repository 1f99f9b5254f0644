import { z } from 'zod';
import { ImageReferenceError, parseImageReference } from './image-ref.ts';
import { rolloutStrategySchema } from './rollout-strategy.ts';

/**
 * The app config: every field of the original Nebula app, with its names and defaults, plus what
 * `docker run` users expect (command, entrypoint, labels, limits, healthcheck). One schema serves the
 * API's inputs, the stored revisions and the messages workers receive.
 */

const PORT_DIGITS = /^[0-9]{1,5}$/;
const portNumber = z.number().int('must be an integer').min(1, 'invalid port').max(65535, 'invalid port');
const portString = z
  .string()
  .regex(PORT_DIGITS, 'invalid port')
  .refine((s) => Number(s) >= 1 && Number(s) <= 65535, 'invalid port');

/** `8080` (host 8080+i -> container 8080) or `{"81": "80"}` (host 81+i -> container 80). */
export const portSpecSchema = z.union([
  portNumber,
  z.record(portString, z.union([portString, portNumber])).refine((r) => Object.keys(r).length > 0, 'empty port map'),
]);

/** The smallest memory a container is given or planned with, in MB. */
export const MIN_MEMORY_MB = 16;
/** The largest cpu factor: containers per core (containers_per.cpu) and cores per container (cpu_limit). */
export const MAX_CPU_FACTOR = 64;

export const containersPerSchema = z
  .strictObject({
    server: z.number().int().min(0).max(1000).optional(),
    instance: z.number().int().min(0).max(1000).optional(),
    /** Containers per core: at most 64 (a host's count is capped again by MAX_CONTAINERS_PER_APP). */
    cpu: z.number().positive().max(MAX_CPU_FACTOR, `at most ${MAX_CPU_FACTOR} containers per core`).optional(),
    /** MB of host memory per container: at least 16 (a smaller one is a typo, and would mean thousands). */
    memory: z.number().min(MIN_MEMORY_MB, `at least ${MIN_MEMORY_MB} MB per container`).optional(),
    mem: z.number().min(MIN_MEMORY_MB, `at least ${MIN_MEMORY_MB} MB per container`).optional(),
  })
  .refine((o) => Object.values(o).filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of server, cpu or memory (aliases: instance, mem)',
  });

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const envValue = z
  .union([z.string(), z.number(), z.boolean()])
  .transform((v) => String(v))
  .refine((v) => !v.includes('\0'), 'must not contain NUL');
/** A map of names to values; `[]` is accepted as empty (the original stores `[]` on POST update). */
export const envVarsSchema = z.union([z.record(z.string().regex(ENV_NAME, 'invalid environment variable name'), envValue), z.array(z.never()).max(0)]);

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const networksSchema = z
  .array(z.string().regex(NETWORK_NAME, 'invalid network name'))
  .refine((n) => !(n.length > 1 && n.some((x) => x === 'host' || x === 'none')), '"host" and "none" must be the only network')
  .refine((n) => new Set(n).size === n.length, 'network listed twice');

const ABS_PATH = /^\/[^\0:]*$/;
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const VOLUME_OPTIONS = new Set([
  'ro',
  'rw',
  'z',
  'Z',
  'shared',
  'slave',
  'private',
  'rshared',
  'rslave',
  'rprivate',
  'nocopy',
  'consistent',
  'cached',
  'delegated',
]);
/** `source:target[:options]`: source an absolute host path or a named volume, target absolute. */
export const volumeSchema = z.string().refine((v) => {
  const parts = v.split(':');
  if (parts.length < 2 || parts.length > 3) return false;
  const [src = '', dst = '', opts] = parts;
  if (!ABS_PATH.test(src) && !VOLUME_NAME.test(src)) return false;
  if (!ABS_PATH.test(dst) || dst === '/') return false;
  if (opts !== undefined) {
    const list = opts.split(',');
    if (list.some((o) => !VOLUME_OPTIONS.has(o))) return false;
    if (list.includes('ro') && list.includes('rw')) return false;
  }
  return true;
}, 'must be "host_path_or_volume:/container/path[:ro|rw]"');

/** `/dev/host[:/dev/container[:rwm]]`. */
export const deviceSchema = z.string().refine((d) => {
  const parts = d.split(':');
  if (parts.length > 3) return false;
  const [host = '', ctr, perms] = parts;
  if (!ABS_PATH.test(host)) return false;
  if (ctr !== undefined && !ABS_PATH.test(ctr)) return false;
  if (perms !== undefined && !/^(?!.*(.).*\1)[rwm]{1,3}$/.test(perms)) return false;
  return true;
}, 'must be "/dev/host[:/dev/container[:rwm]]"');

export const imageSchema = z.string().superRefine((ref, ctx) => {
  try {
    parseImageReference(ref);
  } catch (err) {
    if (!(err instanceof ImageReferenceError)) throw err;
    ctx.addIssue({ code: 'custom', message: `invalid image reference: ${err.message}` });
  }
});

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$/;
/** Labels under this prefix are Nebula's own (owner, app, revision, config hash). */
export const RESERVED_LABEL_PREFIX = 'io.nebula.';
export const labelsSchema = z.record(
  z
    .string()
    .regex(LABEL_KEY, 'invalid label key')
    .refine((k) => !k.startsWith(RESERVED_LABEL_PREFIX) && k !== 'orchestrator', `label keys starting with "${RESERVED_LABEL_PREFIX}" are reserved`),
  z.string().max(4096),
);

const argv = z.array(z.string().max(4096)).max(256);

export const healthcheckSchema = z.strictObject({
  /** Docker's form: `["CMD", "prog", "arg"]` or `["CMD-SHELL", "command line"]`. */
  test: z
    .array(z.string())
    .min(2)
    .refine((t) => t[0] === 'CMD' || t[0] === 'CMD-SHELL', 'must start with "CMD" or "CMD-SHELL"'),
  interval_seconds: z.number().positive().max(3600).default(30),
  timeout_seconds: z.number().positive().max(3600).default(30),
  retries: z.number().int().min(1).max(100).default(3),
  start_period_seconds: z.number().min(0).max(3600).default(0),
});

/** Field schemas without defaults; the patch schema (PUT/PATCH) is built from these. */
const fields = {
  docker_image: imageSchema,
  starting_ports: z.array(portSpecSchema).max(1024),
  containers_per: containersPerSchema,
  env_vars: envVarsSchema,
  running: z.boolean(),
  networks: networksSchema,
  volumes: z.array(volumeSchema).max(256),
  devices: z.array(deviceSchema).max(256),
  privileged: z.boolean(),
  rolling_restart: z.boolean(),
  command: argv.nullable(),
  entrypoint: argv.nullable(),
  labels: labelsSchema,
  memory_limit_mb: z
    .number()
    .int()
    .min(MIN_MEMORY_MB, `at least ${MIN_MEMORY_MB} MB`)
    .max(16 * 1024 * 1024)
    .nullable(),
  cpu_limit: z.number().positive().max(MAX_CPU_FACTOR, `at most ${MAX_CPU_FACTOR} cores`).nullable(),
  healthcheck: healthcheckSchema.nullable(),
  /** Log rotation (json-file): a container's log file is rotated at this size... */
  log_max_size_mb: z.number().int().min(1).max(10_240),
  /** ...and this many files are kept. */
  log_max_files: z.number().int().min(1).max(100),
  /** How changes reach the app's hosts (waves, bake time, failure budget); null: all at once. Not part of any container. */
  rollout_strategy: rolloutStrategySchema.nullable(),
};

export const APP_DEFAULTS = {
  starting_ports: [] as z.infer<typeof fields.starting_ports>,
  containers_per: { server: 1 },
  env_vars: {} as Record<string, string>,
  running: true,
  networks: ['nebula', 'bridge'],
  volumes: [] as string[],
  devices: [] as string[],
  privileged: false,
  rolling_restart: false,
  command: null,
  entrypoint: null,
  labels: {} as Record<string, string>,
  memory_limit_mb: null,
  cpu_limit: null,
  healthcheck: null,
  log_max_size_mb: 10,
  log_max_files: 3,
} as const;

type PortSpec = z.infer<typeof portSpecSchema>;

/** Host and container port of every mapping of container `index` (0-based), as the original does. */
export function portBindings(ports: readonly PortSpec[], index: number): Array<{ host: number; container: number }> {
  const out: Array<{ host: number; container: number }> = [];
  for (const p of ports) {
    if (typeof p === 'number') out.push({ host: p + index, container: p });
    else for (const [h, c] of Object.entries(p)) out.push({ host: Number(h) + index, container: Number(c) });
  }
  return out;
}

function checkPorts(cfg: { starting_ports: PortSpec[]; containers_per: z.infer<typeof containersPerSchema> }, ctx: z.RefinementCtx) {
  const hosts = portBindings(cfg.starting_ports, 0).map((b) => b.host);
  const seen = new Set<number>();
  for (const h of hosts) {
    if (seen.has(h)) ctx.addIssue({ code: 'custom', path: ['starting_ports'], message: `host port ${h} is used twice` });
    seen.add(h);
  }
  // With a fixed count per server the whole range is known: host ports must not overlap or overflow.
  const n = cfg.containers_per.server ?? cfg.containers_per.instance;
  if (n !== undefined && n > 1 && seen.size === hosts.length) {
    const all = new Set<number>();
    for (let i = 0; i < n; i++) {
      for (const b of portBindings(cfg.starting_ports, i)) {
        if (b.host > 65535) {
          ctx.addIssue({ code: 'custom', path: ['starting_ports'], message: `container ${i + 1} would need host port ${b.host} (over 65535)` });
          return;
        }
        if (all.has(b.host)) {
          ctx.addIssue({ code: 'custom', path: ['starting_ports'], message: `host port ${b.host} would be used by two containers` });
          return;
        }
        all.add(b.host);
      }
    }
  }
}

export const appConfigSchema = z
  .strictObject({
    docker_image: fields.docker_image,
    starting_ports: fields.starting_ports.default(() => []),
    containers_per: fields.containers_per.default(() => ({ server: 1 })),
    env_vars: fields.env_vars.default(() => ({})),
    running: fields.running.default(true),
    networks: fields.networks.default(() => ['nebula', 'bridge']),
    volumes: fields.volumes.default(() => []),
    devices: fields.devices.default(() => []),
    privileged: fields.privileged.default(false),
    rolling_restart: fields.rolling_restart.default(false),
    command: fields.command.default(null),
    entrypoint: fields.entrypoint.default(null),
    labels: fields.labels.default(() => ({})),
    memory_limit_mb: fields.memory_limit_mb.default(null),
    cpu_limit: fields.cpu_limit.default(null),
    healthcheck: fields.healthcheck.default(null),
    log_max_size_mb: fields.log_max_size_mb.default(APP_DEFAULTS.log_max_size_mb),
    log_max_files: fields.log_max_files.default(APP_DEFAULTS.log_max_files),
    rollout_strategy: fields.rollout_strategy.default(null),
  })
  .superRefine(checkPorts);

/** A partial config for PUT/PATCH: any subset of the fields, merged into the current config. */
export const appConfigPatchSchema = z.strictObject(fields).partial();

/** What the API accepts (defaults not yet applied). */
export type AppConfigInput = z.input<typeof appConfigSchema>;
/** A complete config, as stored and as sent to workers. */
export type AppConfig = z.output<typeof appConfigSchema>;
export type AppConfigPatch = z.input<typeof appConfigPatchSchema>;
export type ContainersPer = z.infer<typeof containersPerSchema>;
export type Healthcheck = z.output<typeof healthcheckSchema>;

export interface HostFacts {
  cores: number;
  memory_mb: number;
}

/** How many containers of an app one host runs. */
export function containerCount(per: ContainersPer, host: HostFacts): number {
  if (per.server !== undefined) return per.server;
  if (per.instance !== undefined) return per.instance;
  if (per.cpu !== undefined) return Math.max(1, Math.floor(host.cores * per.cpu));
  const mem = per.memory ?? per.mem;
  if (mem !== undefined) return Math.max(1, Math.floor(host.memory_mb / mem));
  return 1;
}

/** env_vars as a plain map (`[]` is empty). */
export function envMap(env: AppConfig['env_vars']): Record<string, string> {
  return Array.isArray(env) ? {} : env;
}
