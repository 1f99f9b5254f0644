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

export interface ImageSummary {
  id: string;
  /** `repo:tag` references; empty for a dangling image. */
  tags: string[];
  /** Used by at least one container on the engine (ours or not, in any state). */
  inUse: boolean;
}

export interface ContainerRuntime {
  /** Containers carrying `io.nebula.owner=nebula` and `io.nebula.host=<hostId>`, in any state. */
  listContainers(hostId: string): Promise<ObservedContainer[]>;
  /** Creates (not starts) a container; returns its id. */
  create(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** Stops with SIGTERM, kills after `timeoutSeconds`; a stopped or missing container is fine. */
  stop(id: string, timeoutSeconds: number): Promise<void>;
  /** Removes (forcefully); a missing container is fine. */
  remove(id: string): Promise<void>;
  restart(id: string, timeoutSeconds: number): Promise<void>;
  inspect(id: string): Promise<ContainerDetails | null>;
  /** Pulls `image` from its registry (with the registry credentials the runtime was given). */
  pull(image: string): Promise<void>;
  /** The local image a reference resolves to, or null when it is not present. */
  imageInfo(image: string): Promise<ImageInfo | null>;
  /** Every local image, with whether a container uses it. */
  listImages(): Promise<ImageSummary[]>;
  /**
   * Removes one image reference (a `repo:tag`, or an id); the image itself goes with its last tag.
   * Never forced: an image a container uses, or one gone meanwhile, is left and `false` returned.
   */
  removeImage(ref: string): Promise<boolean>;
  /** Creates a bridge network when it is missing. */
  ensureNetwork(name: string): Promise<void>;
  ping(): Promise<boolean>;
}
