import {
  abortedError,
  ContainerConfigError,
  EngineUnavailableError,
  ImageNotFoundError,
  NameConflictError,
  PortConflictError,
  RegistryUnavailableError,
} from '../errors.ts';
import type {
  CallOptions,
  ContainerDetails,
  ContainerRuntime,
  ContainerSpec,
  ContainerStats,
  HealthStatus,
  ImageInfo,
  ImageSummary,
  LogsTailOptions,
  ObservedContainer,
  PullOptions,
} from './container-runtime.ts';
import { tailBytes, tailLines } from './log-tail.ts';

interface FakeContainer {
  id: string;
  spec: ContainerSpec;
  state: string;
  health: HealthStatus;
  imageId: string;
  restartCount: number;
  exitCode: number | null;
  /** When (on the runtime's `clock`) a running container exits by itself, with `pendingExit`. */
  exitAt: number | null;
  pendingExit: number;
  log: string;
}

/**
 * An image whose tag is `exit-<code>` (`web:exit-1`) makes containers whose process exits at once
 * with that code: a revision that does not come up, for unit tests and many-host simulations.
 */
export const EXITING_TAG = /:exit-(\d{1,3})$/;

/** What an image weighs in the fake's image list unless `imageSizes` says otherwise. */
export const DEFAULT_IMAGE_SIZE = 1_048_576;

function fresh(id: string, spec: ContainerSpec, imageId: string): FakeContainer {
  return { id, spec, state: 'created', health: undefined, imageId, restartCount: 0, exitCode: null, exitAt: null, pendingExit: 0, log: '' };
}

/** What `onStart` decides for a container: its state, health and, when it exited, its exit code. */
export interface StartOutcome {
  state: string;
  health?: HealthStatus;
  /** The exit code: at once for `exited`; with `exitAfterMs`, when a running container ends. */
  exitCode?: number;
  /** A `running` container exits by itself this long after its start (on the runtime's `clock`), with `exitCode`: a cron run. */
  exitAfterMs?: number;
  /** What the container's process writes (added to its log at each start). */
  log?: string;
}

/**
 * An in-memory container engine behind the ContainerRuntime interface: for planner and executor
 * unit tests, and cheap enough to simulate thousands of hosts in one process (no timers, no I/O).
 * The "registry" is a map of image references to ids that tests change to simulate a re-push.
 */
export class FakeRuntime implements ContainerRuntime {
  readonly containers = new Map<string, FakeContainer>();
  /** What a pull would fetch: reference -> image id. */
  readonly registry = new Map<string, string>();
  /** Images present locally: reference -> image id. */
  readonly images = new Map<string, string>();
  readonly networks = new Set<string>(['bridge', 'host', 'none']);
  /** Set to simulate an engine or registry that does not answer. */
  engineDown = false;
  registryDown = false;
  /**
   * Decides the state of a container when it starts (default: running, healthy when checked; an
   * image tagged `exit-<code>` exits at once with that code, see EXITING_TAG).
   */
  onStart: (spec: ContainerSpec) => StartOutcome = (spec) => {
    const exit = EXITING_TAG.exec(spec.image);
    if (exit) return { state: 'exited', exitCode: Number(exit[1]) };
    return { state: 'running', health: spec.healthcheck ? 'healthy' : undefined };
  };
  /** Every mutating call, in order: for tests that check what was (not) touched. */
  readonly calls: Array<{ op: string; id?: string; name?: string; image?: string }> = [];
  /** Pull attempts, failed ones included. */
  pullAttempts = 0;
  /** The time containers that exit by themselves (`exitAfterMs`) go by; tests with a manual clock set it. */
  clock: () => number = () => performance.now();
  /** Per image id, what the image list says it weighs (default DEFAULT_IMAGE_SIZE). */
  readonly imageSizes = new Map<string, number>();
  private seq = 0;

  /** Adds a container directly (e.g. one that is not ours), in the given state. */
  seed(spec: ContainerSpec, state = 'running', imageId = 'sha256:seed'): string {
    const id = this.nextId();
    this.containers.set(id, { ...fresh(id, spec, imageId), state, exitCode: state === 'exited' ? 0 : null });
    return id;
  }

  private nextId(): string {
    this.seq += 1;
    return `fake${this.seq.toString(16).padStart(12, '0')}`;
  }

  /** Calls refused while `engineDown`. */
  refused = 0;
  /**
   * Operations (`start`, `pull`...) that get no answer, as from a frozen engine: they wait until
   * their signal aborts them, or until `thaw()`. The fake has no deadlines of its own.
   */
  readonly hang = new Set<string>();
  /** Calls waiting in `hang`, e.g. `start web-1`. */
  readonly hanging: string[] = [];
  /** Calls that hung and were ended by their signal. */
  readonly aborted: string[] = [];
  private released: Array<() => void> = [];

  /** Lets every hanging call go on (and clears `hang`). */
  thaw(): void {
    this.hang.clear();
    for (const r of this.released.splice(0)) r();
  }

  private async check(op: string, opts?: CallOptions, what = ''): Promise<void> {
    if (this.hang.has(op)) {
      const call = `${op}${what ? ` ${what}` : ''}`;
      this.hanging.push(call);
      const signal = opts?.signal;
      try {
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            this.aborted.push(call);
            reject(abortedError(signal as AbortSignal, `fake engine call \`${call}\``));
          };
          if (signal?.aborted) return onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
          this.released.push(() => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          });
        });
      } finally {
        this.hanging.splice(this.hanging.indexOf(call), 1);
      }
    }
    if (this.engineDown) {
      this.refused += 1;
      throw new EngineUnavailableError('fake engine is down');
    }
  }

  async ping(): Promise<boolean> {
    return !this.engineDown;
  }

  async listContainers(hostId: string, opts?: CallOptions): Promise<ObservedContainer[]> {
    await this.check('list', opts);
    const out: ObservedContainer[] = [];
    for (const c of this.containers.values()) {
      if (c.spec.labels['io.nebula.owner'] !== 'nebula' || c.spec.labels['io.nebula.host'] !== hostId) continue;
      out.push(this.observe(c));
    }
    return out;
  }

  /** Every container, ours or not (tests). */
  all(): ObservedContainer[] {
    return [...this.containers.values()].map((c) => this.observe(c));
  }

  /** A running container whose time has come exits (lazily: the fake has no timers). */
  private settle(c: FakeContainer): void {
    if (c.exitAt !== null && c.state === 'running' && this.clock() >= c.exitAt) {
      c.state = 'exited';
      c.health = undefined;
      c.exitCode = c.pendingExit;
      c.exitAt = null;
    }
  }

  private observe(c: FakeContainer): ObservedContainer {
    this.settle(c);
    return { id: c.id, name: c.spec.name, labels: { ...c.spec.labels }, state: c.state, health: c.health, imageId: c.imageId };
  }

  async create(spec: ContainerSpec, opts?: CallOptions): Promise<string> {
    await this.check('create', opts, spec.name);
    const imageId = this.images.get(spec.image);
    if (imageId === undefined) throw new ImageNotFoundError(`no such image: ${spec.image}`);
    for (const c of this.containers.values()) {
      if (c.spec.name === spec.name) throw new NameConflictError(`container name ${spec.name} is already in use by ${c.id}`);
    }
    for (const n of spec.networks) if (!this.networks.has(n)) throw new ContainerConfigError(`network ${n} not found`);
    const id = this.nextId();
    this.containers.set(id, fresh(id, spec, imageId));
    this.calls.push({ op: 'create', id, name: spec.name });
    return id;
  }

  async start(id: string, opts?: CallOptions): Promise<void> {
    await this.check('start', opts, opts?.name ?? id);
    const c = this.containers.get(id);
    if (c === undefined) throw new ContainerConfigError(`no such container ${id}`);
    for (const other of this.containers.values()) {
      if (other === c || other.state !== 'running') continue;
      const taken = other.spec.ports.find((p) => c.spec.ports.some((q) => q.host === p.host));
      if (taken) throw new PortConflictError(`port ${taken.host} is already allocated`);
    }
    this.started(c);
    this.calls.push({ op: 'start', id, name: c.spec.name });
  }

  private started(c: FakeContainer): void {
    const r = this.onStart(c.spec);
    c.state = r.state;
    c.health = r.health;
    c.exitCode = r.state === 'exited' || r.state === 'dead' ? (r.exitCode ?? 0) : null;
    c.exitAt = r.state === 'running' && r.exitAfterMs !== undefined ? this.clock() + r.exitAfterMs : null;
    c.pendingExit = r.exitCode ?? 0;
    c.log += r.log ?? '';
  }

  async rename(id: string, name: string, opts?: CallOptions): Promise<void> {
    await this.check('rename', opts, opts?.name ?? id);
    const c = this.containers.get(id);
    if (c === undefined) throw new ContainerConfigError(`no such container ${id}`);
    for (const other of this.containers.values()) {
      if (other !== c && other.spec.name === name) throw new NameConflictError(`container name ${name} is already in use by ${other.id}`);
    }
    const from = c.spec.name;
    c.spec = { ...c.spec, name };
    this.calls.push({ op: 'rename', id, name: `${from} -> ${name}` });
  }

  /** The exit code of a container stopped while running (Docker's is 143 or 137; 0 kept for the app tests). */
  stopExitCode = 0;

  async stop(id: string, _timeoutSeconds = 0, opts?: CallOptions): Promise<void> {
    await this.check('stop', opts, opts?.name ?? id);
    const c = this.containers.get(id);
    if (c === undefined) return;
    this.settle(c);
    if (c.state === 'running' || c.state === 'restarting' || c.state === 'paused') c.exitCode = this.stopExitCode;
    c.state = 'exited';
    c.exitAt = null;
    c.health = undefined;
    this.calls.push({ op: 'stop', id, name: c.spec.name });
  }

  async remove(id: string, opts?: CallOptions): Promise<void> {
    await this.check('remove', opts, opts?.name ?? id);
    const c = this.containers.get(id);
    if (c === undefined) return;
    this.containers.delete(id);
    this.calls.push({ op: 'remove', id, name: c.spec.name });
  }

  async restart(id: string, _timeoutSeconds = 0, opts?: CallOptions): Promise<void> {
    await this.check('restart', opts, opts?.name ?? id);
    const c = this.containers.get(id);
    if (c === undefined) return;
    this.started(c);
    c.restartCount += 1;
    this.calls.push({ op: 'restart', id, name: c.spec.name });
  }

  async inspect(id: string, opts?: CallOptions): Promise<ContainerDetails | null> {
    await this.check('inspect', opts, opts?.name ?? id);
    const c = this.containers.get(id);
    if (c === undefined) return null;
    const seen = this.observe(c);
    return {
      ...seen,
      restarting: c.state === 'restarting',
      restartCount: c.restartCount,
      exitCode: c.state === 'exited' || c.state === 'dead' ? (c.exitCode ?? 0) : null,
    };
  }

  /**
   * Pulls of `image` (or of every image) wait until releasePulls(), as behind a slow registry: for
   * tests that act while a rollout is under way on a host. `pullsHeld` counts the pulls that waited.
   */
  holdPulls(image: string | null = null): void {
    let release: () => void = () => undefined;
    const open = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.pullGate = { image, open, release };
  }

  releasePulls(): void {
    this.pullGate?.release();
    this.pullGate = null;
  }

  pullsHeld = 0;
  private pullGate: { image: string | null; open: Promise<void>; release: () => void } | null = null;

  async pull(image: string, opts?: PullOptions): Promise<void> {
    const gate = this.pullGate;
    if (gate !== null && (gate.image === null || gate.image === image)) {
      this.pullsHeld += 1;
      await gate.open;
    }
    await this.check('pull', opts, image);
    this.pullAttempts += 1;
    if (this.registryDown) throw new RegistryUnavailableError(`registry of ${image} does not answer`);
    const id = this.registry.get(image);
    if (id === undefined) throw new ImageNotFoundError(`manifest for ${image} not found`);
    this.images.set(image, id);
    this.calls.push({ op: 'pull', image });
  }

  async imageInfo(image: string, opts?: CallOptions): Promise<ImageInfo | null> {
    await this.check('imageInfo', opts, image);
    const id = this.images.get(image);
    return id === undefined ? null : { id, digest: `${image.replace(/:[^/:]*$/, '')}@${id}` };
  }

  async listImages(opts?: CallOptions): Promise<ImageSummary[]> {
    await this.check('listImages', opts);
    const used = new Set([...this.containers.values()].map((c) => c.imageId));
    const byId = new Map<string, string[]>();
    for (const [ref, id] of this.images) byId.set(id, [...(byId.get(id) ?? []), ref]);
    return [...byId].map(([id, tags]) => ({ id, tags, inUse: used.has(id), size: this.imageSizes.get(id) ?? DEFAULT_IMAGE_SIZE }));
  }

  /** The fake keeps only tags: removing the last tag of an image removes it; an id removes every tag. */
  async removeImage(ref: string, opts?: CallOptions): Promise<boolean> {
    await this.check('removeImage', opts, ref);
    const id = this.images.get(ref) ?? ref;
    if ([...this.containers.values()].some((c) => c.imageId === id)) return false;
    const refs = this.images.has(ref) ? [ref] : [...this.images].filter(([, img]) => img === id).map(([r]) => r);
    for (const r of refs) this.images.delete(r);
    if (refs.length > 0) this.calls.push({ op: 'removeImage', image: ref });
    return refs.length > 0;
  }

  /**
   * Per container id: what its stats say (default: a running container uses 1.5 % CPU and 32 MiB of
   * a 1 GiB limit; a stopped one no CPU and no memory). Set entries to simulate load.
   */
  readonly stats = new Map<string, ContainerStats>();
  /** What `dataRoot` answers (reports show the disk of that path). */
  dataRootPath = '/';

  async containerStats(id: string, opts?: CallOptions): Promise<ContainerStats | null> {
    await this.check('stats', opts);
    const c = this.containers.get(id);
    if (c === undefined) return null;
    const set = this.stats.get(id);
    if (set !== undefined) return set;
    return c.state === 'running'
      ? { cpuPercent: 1.5, memoryBytes: 32 * 1024 * 1024, memoryLimitBytes: 1024 * 1024 * 1024 }
      : { cpuPercent: null, memoryBytes: null, memoryLimitBytes: null };
  }

  async logsTail(id: string, opts: LogsTailOptions = {}): Promise<string> {
    await this.check('logs', opts, opts.name ?? id);
    const c = this.containers.get(id);
    if (c === undefined) return '';
    return tailBytes(Buffer.from(tailLines(c.log, opts.lines)), opts.bytes);
  }

  async dataRoot(opts?: CallOptions): Promise<string> {
    await this.check('info', opts);
    return this.dataRootPath;
  }

  async ensureNetwork(name: string, opts?: CallOptions): Promise<void> {
    await this.check('ensureNetwork', opts, name);
    this.networks.add(name);
  }
}
