/**
 * The narrow interface between the worker and a container engine. `DockerRuntime` is the real one
 * (the only code that talks to dockerode); `FakeRuntime` is an in-memory one for unit tests and for
 * simulating many hosts in one process. Errors are the named errors of `../errors.ts`.
 */

/** Labels Nebula puts on every container it creates; the planner owns only what carries them. */
export const LABELS = {
  owner: 'io.nebula.owner',
  host: 'io.nebula.host',
  app: 'io.nebula.app',
  incarnation: 'io.nebula.incarnation',
  revision: 'io.nebula.revision',
  configHash: 'io.nebula.config-hash',
  index: 'io.nebula.index',
  /** On a cron job's run containers instead of `app` (the app planner owns only containers with an app). */
  cronJob: 'io.nebula.cron-job',
  /** The job's `cron_job_id` the run was started with. */
  cronJobId: 'io.nebula.cron-job-id',
} as const;
export const OWNER = 'nebula';

export interface PortBinding {
  host: number;
  container: number;
}

export interface HealthcheckSpec {
  test: string[];
  intervalSeconds: number;
  timeoutSeconds: number;
  retries: number;
  startPeriodSeconds: number;
}

/** Everything needed to create one container. */
export interface ContainerSpec {
  name: string;
  image: string;
  env: Record<string, string>;
  ports: PortBinding[];
  volumes: string[];
  devices: string[];
  privileged: boolean;
  /** `host` or `none` alone, or bridge networks: the first at create, the others connected after. */
  networks: string[];
  command: string[] | null;
  entrypoint: string[] | null;
  labels: Record<string, string>;
  memoryLimitMb: number | null;
  cpuLimit: number | null;
  healthcheck: HealthcheckSpec | null;
  /** json-file log rotation; absent: the engine's default logging (unbounded json-file, usually). */
  log?: LogSpec;
  /**
   * Absent: `unless-stopped` (an app's containers come back with the engine). `no` for a cron run,
   * which must end when its process does. Absent from app specs, so their config hash is unchanged.
   */
  restartPolicy?: 'no' | 'unless-stopped';
}

export interface LogSpec {
  maxSizeMb: number;
  maxFiles: number;
}

/** `created`, `running`, `restarting`, `paused`, `exited`, `dead`, `removing` (Docker's states). */
export type ContainerStatus = string;
/** `healthy`, `unhealthy`, `starting`; undefined when the container has no healthcheck. */
export type HealthStatus = 'healthy' | 'unhealthy' | 'starting' | undefined;

export interface ObservedContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
  state: ContainerStatus;
  health: HealthStatus;
  /** The image id (`sha256:...`) the container was created from. */
  imageId: string;
}

export interface ContainerDetails extends ObservedContainer {
  restarting: boolean;
  restartCount: number;
  exitCode: number | null;
}

export interface ImageInfo {
  id: string;
  /** `repo@sha256:...` when the image came from a registry, else null. */
  digest: string | null;
}

/**
 * Every call has a deadline of its own in the real runtime (an engine that does not answer fails
 * the call with EngineTimeoutError); `signal` ends it earlier, when the convergence it belongs to is
 * aborted, with OperationAbortedError naming the call.
 */
export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** The container's name, for messages (ids say little to a reader). */
  name?: string | undefined;
}

export interface PullOptions extends CallOptions {
  /** Called at every sign of progress (a new status or more bytes of a layer). */
  onProgress?: (() => void) | undefined;
}

export interface ImageSummary {
  id: string;
  /** `repo:tag` references; empty for a dangling image. */
  tags: string[];
  /** Used by at least one container on the engine (ours or not, in any state). */
  inUse: boolean;
  /** Bytes, as the engine's image list reports it (layers shared with other images included). */
  size: number;
}

/** Which end of a container's log to read: the last `lines` lines, cut to the last `bytes` bytes. */
export interface LogsTailOptions extends CallOptions {
  lines?: number | undefined;
  bytes?: number | undefined;
}

/** How many lines `logsTail` reads when it is given only a byte limit. */
export const DEFAULT_TAIL_LINES = 500;

/** One container's usage, from the engine's stats (null: a figure the engine did not give). */
export interface ContainerStats {
  /** Percent of one core (200: two cores busy), over the engine's own sampling window. */
  cpuPercent: number | null;
  /** Memory in use, without the page cache the kernel can take back. */
  memoryBytes: number | null;
  memoryLimitBytes: number | null;
}

export interface ContainerRuntime {
  /** Containers carrying `io.nebula.owner=nebula` and `io.nebula.host=<hostId>`, in any state. */
  listContainers(hostId: string, opts?: CallOptions): Promise<ObservedContainer[]>;
  /** Creates (not starts) a container; returns its id. */
  create(spec: ContainerSpec, opts?: CallOptions): Promise<string>;
  start(id: string, opts?: CallOptions): Promise<void>;
  /** Stops with SIGTERM, kills after `timeoutSeconds`; a stopped or missing container is fine. */
  stop(id: string, timeoutSeconds: number, opts?: CallOptions): Promise<void>;
  /** Removes (forcefully); a missing container is fine. */
  remove(id: string, opts?: CallOptions): Promise<void>;
  restart(id: string, timeoutSeconds: number, opts?: CallOptions): Promise<void>;
  /**
   * Renames a container (the executor sets a replaced one aside under another name until its
   * successor has settled, and renames it back to put it back). A name taken is a NameConflictError.
   */
  rename(id: string, name: string, opts?: CallOptions): Promise<void>;
  inspect(id: string, opts?: CallOptions): Promise<ContainerDetails | null>;
  /**
   * Pulls `image` from its registry (with the registry credentials the runtime was given). A pull
   * without progress for the runtime's stall timeout fails with PullStalledError.
   */
  pull(image: string, opts?: PullOptions): Promise<void>;
  /** The local image a reference resolves to, or null when it is not present. */
  imageInfo(image: string, opts?: CallOptions): Promise<ImageInfo | null>;
  /** Every local image, with whether a container uses it. */
  listImages(opts?: CallOptions): Promise<ImageSummary[]>;
  /**
   * Removes one image reference (a `repo:tag`, or an id); the image itself goes with its last tag.
   * Never forced: an image a container uses, or one gone meanwhile, is left and `false` returned.
   */
  removeImage(ref: string, opts?: CallOptions): Promise<boolean>;
  /**
   * One sample of a container's stats (not a stream; the engine takes about a second to measure
   * CPU). Null when the container is gone.
   */
  containerStats(id: string, opts?: CallOptions): Promise<ContainerStats | null>;
  /**
   * The end of a container's log, stdout and stderr interleaved as written (UTF-8, a character cut
   * at the start dropped). Empty when the container is gone.
   */
  logsTail(id: string, opts?: LogsTailOptions): Promise<string>;
  /** The engine's data root (`DockerRootDir` of its info), whose file system reports show. */
  dataRoot(opts?: CallOptions): Promise<string>;
  /** Creates a bridge network when it is missing. */
  ensureNetwork(name: string, opts?: CallOptions): Promise<void>;
  ping(): Promise<boolean>;
}
