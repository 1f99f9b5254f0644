import { parseImageReference } from '@nebula/contracts';
import type Docker from 'dockerode';
import { abortedError, EngineTimeoutError, PullStalledError, WorkerError } from '../errors.ts';
import { byCodeUnit } from '../text-order.ts';
import { classifyEngineError, type EngineCallKind, engineMessage } from './classify-engine-error.ts';
import {
  type CallOptions,
  type ContainerDetails,
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerStats,
  DEFAULT_TAIL_LINES,
  type HealthStatus,
  type ImageInfo,
  type ImageSummary,
  LABELS,
  type LogsTailOptions,
  type ObservedContainer,
  OWNER,
  type PullOptions,
} from './container-runtime.ts';
import { demuxLog, tailBytes } from './log-tail.ts';
import type { RegistryCredentials } from './registry-auth.ts';
import { type RawStats, statsFigures } from './stats-figures.ts';

interface DockerodeError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
}

/** A failed engine call as a named error; named errors (timeouts, aborts) pass through. */
function classify(err: unknown, what: string, kind: EngineCallKind = 'container'): WorkerError {
  if (err instanceof WorkerError) return err;
  const e = err as DockerodeError;
  const message = engineMessage(err);
  const Class = classifyEngineError({ status: e?.statusCode, message, code: e?.code }, kind);
  const text = e?.code !== undefined && message === '' ? `docker engine unreachable (${e.code})` : message;
  return new Class(`${what}: ${text}${e?.code !== undefined && !text.includes(e.code) ? ` (${e.code})` : ''}`, { cause: err });
}

/** dockerode passes a signal on for ping too; its types do not say so. */
interface SignalledPing {
  ping(opts: { abortSignal: AbortSignal }): Promise<unknown>;
}

const notFound = (err: unknown) => (err as DockerodeError)?.statusCode === 404;
const statusOf = (err: unknown) => (err as DockerodeError)?.statusCode;

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

export interface DockerRuntimeOptions {
  auth?: (registry: string) => RegistryCredentials | undefined;
  /** The deadline of an ordinary engine call (list, inspect, create, start, remove...). */
  callTimeoutMs?: number;
  /** A pull that makes no progress for this long is aborted. */
  pullStallMs?: number;
}

/**
 * Runs one engine call under its deadline (and the caller's signal). dockerode aborts the HTTP
 * request when the signal fires; the race is there for calls that would not notice it.
 */
async function withDeadline<T>(what: string, budgetMs: number, signal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const label = `docker engine call \`${what}\``;
  if (signal?.aborted) throw abortedError(signal, label);
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new EngineTimeoutError(`${label} did not answer within ${seconds(budgetMs)}`)), budgetMs);
  const combined = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
  const why = () => (deadline.signal.aborted ? (deadline.signal.reason as EngineTimeoutError) : abortedError(signal as AbortSignal, label));
  let onAbort: () => void = () => undefined;
  const abandoned = new Promise<never>((_, reject) => {
    onAbort = () => reject(why());
    combined.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([fn(combined), abandoned]);
  } catch (err) {
    if (combined.aborted) throw why();
    throw err;
  } finally {
    clearTimeout(timer);
    combined.removeEventListener('abort', onAbort);
  }
}

interface PullLine {
  id?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
}

/**
 * Reads a pull's progress stream to its end. Unlike docker-modem's followProgress, a stream that
 * closes before its end (destroyed, engine gone) is a failure, not a success. `onProgress` hears
 * only lines that say something new (a repeated line is no progress).
 */
function followPull(stream: NodeJS.ReadableStream, signal: AbortSignal, onProgress: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let buf = '';
    let failure: string | null = null;
    let ended = false;
    const seen = new Map<string, string>();
    const destroy = () => (stream as NodeJS.ReadableStream & { destroy(err?: unknown): void }).destroy(signal.reason);
    signal.addEventListener('abort', destroy, { once: true });
    const done = (err?: unknown) => {
      signal.removeEventListener('abort', destroy);
      if (err === undefined) resolve();
      else reject(err);
    };
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        let o: PullLine;
        try {
          o = JSON.parse(line) as PullLine;
        } catch {
          continue;
        }
        if (o.error !== undefined) {
          failure = o.errorDetail?.message ?? o.error;
          continue;
        }
        const key = o.id ?? '';
        const now = `${o.status ?? ''}|${o.progressDetail?.current ?? ''}`;
        if (seen.get(key) !== now) {
          seen.set(key, now);
          onProgress();
        }
      }
    });
    stream.on('end', () => {
      ended = true;
      done(failure === null ? undefined : new Error(failure));
    });
    stream.on('error', (err: unknown) => done(err));
    stream.on('close', () => {
      if (!ended) done(signal.aborted ? signal.reason : new Error('the pull stream closed before its end'));
    });
  });
}

function healthFromStatus(status: string): HealthStatus {
  if (status.includes('(healthy)')) return 'healthy';
  if (status.includes('(unhealthy)')) return 'unhealthy';
  if (status.includes('(health: starting)')) return 'starting';
  return undefined;
}

function parseDevice(d: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const [host = '', ctr, perms] = d.split(':');
  return { PathOnHost: host, PathInContainer: ctr ?? host, CgroupPermissions: perms ?? 'rwm' };
}

const NS_PER_S = 1_000_000_000;

/** The real ContainerRuntime: a Docker engine through dockerode. Every call has a deadline. */
export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly auth: (registry: string) => RegistryCredentials | undefined;
  private readonly callTimeoutMs: number;
  private readonly pullStallMs: number;
  private readonly ensuring = new Map<string, Promise<void>>();

  constructor(docker: Docker, opts: DockerRuntimeOptions = {}) {
    this.docker = docker;
    this.auth = opts.auth ?? (() => undefined);
    this.callTimeoutMs = opts.callTimeoutMs ?? 30_000;
    this.pullStallMs = opts.pullStallMs ?? 60_000;
  }

  /** An ordinary call: the call timeout; a stop or restart also gets the time the engine may wait. */
  private call<T>(what: string, opts: CallOptions | undefined, fn: (signal: AbortSignal) => Promise<T>, extraMs = 0): Promise<T> {
    return withDeadline(what, this.callTimeoutMs + extraMs, opts?.signal, fn);
  }

  async ping(): Promise<boolean> {
    try {
      await this.call('ping', undefined, (abortSignal) => (this.docker as unknown as SignalledPing).ping({ abortSignal }));
      return true;
    } catch {
      return false;
    }
  }

  async listContainers(hostId: string, opts?: CallOptions): Promise<ObservedContainer[]> {
    let list: Docker.ContainerInfo[];
    try {
      list = await this.call('list containers', opts, (abortSignal) =>
        this.docker.listContainers({ all: true, filters: { label: [`${LABELS.owner}=${OWNER}`, `${LABELS.host}=${hostId}`] }, abortSignal }),
      );
    } catch (err) {
      throw classify(err, 'list containers');
    }
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      labels: c.Labels ?? {},
      state: c.State,
      health: healthFromStatus(c.Status ?? ''),
      imageId: c.ImageID,
    }));
  }

  async create(spec: ContainerSpec, callOpts?: CallOptions): Promise<string> {
    const hostNet = spec.networks[0] === 'host' || spec.networks[0] === 'none';
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostPort: string }>> = {};
    if (!hostNet) {
      for (const p of spec.ports) {
        const key = `${p.container}/tcp`;
        exposed[key] = {};
        bindings[key] ??= [];
        bindings[key].push({ HostPort: String(p.host) });
      }
    }
    const hc = spec.healthcheck;
    const opts: Docker.ContainerCreateOptions = {
      name: spec.name,
      Image: spec.image,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: spec.labels,
      ExposedPorts: exposed,
      HostConfig: {
        PortBindings: bindings,
        Binds: spec.volumes,
        Devices: spec.devices.map(parseDevice),
        Privileged: spec.privileged,
        RestartPolicy: { Name: spec.restartPolicy ?? 'unless-stopped' },
        NetworkMode: spec.networks[0] ?? 'bridge',
        ...(spec.memoryLimitMb !== null ? { Memory: spec.memoryLimitMb * 1024 * 1024 } : {}),
        ...(spec.cpuLimit !== null ? { NanoCpus: Math.round(spec.cpuLimit * NS_PER_S) } : {}),
        // Rotation keeps a chatty container from filling the disk (json-file keeps everything by default).
        ...(spec.log !== undefined
          ? { LogConfig: { Type: 'json-file', Config: { 'max-size': `${spec.log.maxSizeMb}m`, 'max-file': String(spec.log.maxFiles) } } }
          : {}),
      },
    };
    if (spec.command !== null) opts.Cmd = spec.command;
    if (spec.entrypoint !== null) opts.Entrypoint = spec.entrypoint;
    if (hc !== null) {
      opts.Healthcheck = {
        Test: hc.test,
        Interval: Math.round(hc.intervalSeconds * NS_PER_S),
        Timeout: Math.round(hc.timeoutSeconds * NS_PER_S),
        Retries: hc.retries,
        StartPeriod: Math.round(hc.startPeriodSeconds * NS_PER_S),
      };
    }
    let id: string;
    try {
      id = (await this.call(`create ${spec.name}`, callOpts, (abortSignal) => this.docker.createContainer({ ...opts, abortSignal }))).id;
    } catch (err) {
      throw classify(err, `create ${spec.name}`);
    }
    try {
      for (const net of spec.networks.slice(1)) {
        await this.call(`connect ${spec.name} to ${net}`, callOpts, (abortSignal) =>
          this.docker.getNetwork(net).connect({ Container: id, abortSignal } as Docker.NetworkConnectOptions),
        );
      }
    } catch (err) {
      // Not under the caller's signal: an aborted convergence must still not leave this behind.
      await this.remove(id, { name: spec.name }).catch(() => undefined);
      throw classify(err, `connect ${spec.name} to its networks`);
    }
    return id;
  }

  async start(id: string, opts?: CallOptions): Promise<void> {
    const what = `start ${opts?.name ?? id.slice(0, 12)}`;
    try {
      await this.call(what, opts, (abortSignal) => this.docker.getContainer(id).start({ abortSignal }));
    } catch (err) {
      if (statusOf(err) === 304) return; // already running
      throw classify(err, what);
    }
  }

  async stop(id: string, timeoutSeconds: number, opts?: CallOptions): Promise<void> {
    const who = opts?.name ?? id.slice(0, 12);
    const c = this.docker.getContainer(id);
    try {
      // The engine sends SIGTERM, then SIGKILL after `t` seconds, and answers when it is gone.
      await this.call(`stop ${who}`, opts, (abortSignal) => c.stop({ t: timeoutSeconds, abortSignal }), timeoutSeconds * 1000);
    } catch (err) {
      if (err instanceof WorkerError) throw err; // no answer in time, or aborted: a kill would hang as well
      const status = statusOf(err);
      if (status === 304 || status === 404) return;
      try {
        await this.call(`kill ${who}`, opts, (abortSignal) => c.kill({ abortSignal }));
      } catch (killErr) {
        const s = statusOf(killErr);
        if (s === 404 || s === 409) return; // gone, or not running any more
        throw classify(killErr, `stop ${who}`);
      }
    }
  }

  async remove(id: string, opts?: CallOptions): Promise<void> {
    const what = `remove ${opts?.name ?? id.slice(0, 12)}`;
    try {
      await this.call(what, opts, (abortSignal) => this.docker.getContainer(id).remove({ force: true, abortSignal }));
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || (status === 409 && /already in progress/i.test(engineMessage(err)))) return;
      throw classify(err, what);
    }
  }

  async restart(id: string, timeoutSeconds: number, opts?: CallOptions): Promise<void> {
    const what = `restart ${opts?.name ?? id.slice(0, 12)}`;
    try {
      await this.call(what, opts, (abortSignal) => this.docker.getContainer(id).restart({ t: timeoutSeconds, abortSignal }), timeoutSeconds * 1000);
    } catch (err) {
      if (notFound(err)) return;
      throw classify(err, what);
    }
  }

  async rename(id: string, name: string, opts?: CallOptions): Promise<void> {
    const what = `rename ${opts?.name ?? id.slice(0, 12)} to ${name}`;
    try {
      await this.call(what, opts, (abortSignal) => this.docker.getContainer(id).rename({ name, abortSignal }));
    } catch (err) {
      throw classify(err, what);
    }
  }

  async inspect(id: string, opts?: CallOptions): Promise<ContainerDetails | null> {
    const what = `inspect ${opts?.name ?? id.slice(0, 12)}`;
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.call(what, opts, (abortSignal) => this.docker.getContainer(id).inspect({ abortSignal }));
    } catch (err) {
      if (notFound(err)) return null;
      throw classify(err, what);
    }
    const health = info.State.Health?.Status;
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      labels: info.Config.Labels ?? {},
      state: info.State.Status,
      health: health === 'healthy' || health === 'unhealthy' || health === 'starting' ? health : undefined,
      imageId: info.Image,
      restarting: info.State.Restarting,
      restartCount: info.RestartCount,
      exitCode: info.State.Running ? null : info.State.ExitCode,
    };
  }

  /**
   * A pull has no overall deadline of its own (a large image on a slow link may take long; the
   * convergence deadline bounds it): it is aborted when it makes no progress for `pullStallMs`.
   * The engine's own client gives up on a registry that sends no headers, not on a body that
   * stops: destroying our stream makes the engine cancel its pull.
   */
  async pull(image: string, opts: PullOptions = {}): Promise<void> {
    const registry = parseImageReference(image).registry;
    const auth = this.auth(registry);
    const label = `docker engine call \`pull ${image}\``;
    if (opts.signal?.aborted) throw abortedError(opts.signal, label);
    const stall = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stall.signal]) : stall.signal;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stall.abort(new PullStalledError(`pull of ${image} stalled: no progress for ${seconds(this.pullStallMs)}`)), this.pullStallMs);
    };
    const why = () => (stall.signal.aborted ? (stall.signal.reason as PullStalledError) : abortedError(opts.signal as AbortSignal, label));
    arm();
    try {
      const stream = await withDeadline(
        `pull ${image}`,
        this.pullStallMs,
        opts.signal,
        (abortSignal) =>
          this.docker.pull(image, {
            ...(auth ? { authconfig: auth } : {}),
            abortSignal: AbortSignal.any([abortSignal, signal]),
          }) as Promise<NodeJS.ReadableStream>,
      );
      arm();
      await followPull(stream, signal, () => {
        arm();
        opts.onProgress?.();
      });
    } catch (err) {
      if (signal.aborted) throw why();
      if (err instanceof EngineTimeoutError)
        throw new PullStalledError(`pull of ${image}: the engine did not start the pull within ${seconds(this.pullStallMs)}`, { cause: err });
      throw classify(err, `pull ${image}`, 'pull');
    } finally {
      clearTimeout(timer);
    }
  }

  async imageInfo(image: string, opts?: CallOptions): Promise<ImageInfo | null> {
    const what = `inspect image ${image}`;
    let info: Docker.ImageInspectInfo;
    try {
      // dockerode's Image.inspect does not pass a signal on: the same request, made with one.
      info = await this.call(
        what,
        opts,
        (abortSignal) =>
          new Promise<Docker.ImageInspectInfo>((resolve, reject) =>
            this.docker.modem.dial(
              { path: `/images/${image}/json`, method: 'GET', options: {}, abortSignal, statusCodes: { 200: true, 404: 'no such image', 500: 'server error' } },
              (err, data) => (err ? reject(err) : resolve(data as Docker.ImageInspectInfo)),
            ),
          ),
      );
    } catch (err) {
      if (notFound(err)) return null;
      throw classify(err, what);
    }
    const repo = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
    const digests = info.RepoDigests ?? [];
    return { id: info.Id, digest: digests.find((d) => d.startsWith(`${repo}@`)) ?? digests[0] ?? null };
  }

  async listImages(opts?: CallOptions): Promise<ImageSummary[]> {
    try {
      const [images, containers] = await this.call('list images', opts, (abortSignal) =>
        Promise.all([this.docker.listImages({ abortSignal }), this.docker.listContainers({ all: true, abortSignal })]),
      );
      const used = new Set(containers.map((c) => c.ImageID));
      return images.map((i) => ({
        id: i.Id,
        tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
        inUse: used.has(i.Id),
        size: Number.isFinite(i.Size) ? i.Size : 0,
      }));
    } catch (err) {
      throw classify(err, 'list images');
    }
  }

  async removeImage(ref: string, opts?: CallOptions): Promise<boolean> {
    try {
      // Not forced: the engine refuses (409) an image a container uses, or an id with several tags.
      await this.call(`remove image ${ref}`, opts, (abortSignal) => this.docker.getImage(ref).remove({ noprune: false, abortSignal }));
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 409) return false;
      throw classify(err, `remove image ${ref}`);
    }
  }

  /**
   * Two apps starting together on one host would both find the network missing and both create it:
   * Docker allows two networks of one name (CheckDuplicate is not atomic) and then refuses every
   * container that names it ("network nebula is ambiguous"), for good. So creation is serialised per
   * name within this process, and duplicates made by another process meanwhile are reduced to the
   * oldest one (every racer picks the same).
   */
  async containerStats(id: string, opts?: CallOptions): Promise<ContainerStats | null> {
    const what = `stats of ${opts?.name ?? id.slice(0, 12)}`;
    try {
      // stream: false waits for the engine's second reading (about a second), which CPU needs.
      const raw = await this.call(what, opts, (abortSignal) =>
        // dockerode takes the signal (it aborts the request); its types do not say so.
        this.docker.getContainer(id).stats({ stream: false, abortSignal } as { stream: false }),
      );
      return statsFigures(raw as RawStats);
    } catch (err) {
      if (notFound(err)) return null;
      throw classify(err, what);
    }
  }

  /** The engine keeps no byte offset for a log: it reads the last lines, and the bytes are cut from them. */
  async logsTail(id: string, opts: LogsTailOptions = {}): Promise<string> {
    const what = `logs of ${opts.name ?? id.slice(0, 12)}`;
    try {
      const raw = await this.call(what, opts, (abortSignal) =>
        // follow: false answers one body (a Buffer); dockerode passes the signal on, its types do not say so.
        this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, tail: opts.lines ?? DEFAULT_TAIL_LINES, abortSignal } as {
          follow: false;
        }),
      );
      return tailBytes(demuxLog(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))), opts.bytes);
    } catch (err) {
      if (notFound(err)) return '';
      throw classify(err, what);
    }
  }

  async dataRoot(opts?: CallOptions): Promise<string> {
    try {
      const info = (await this.call('info', opts, (abortSignal) =>
        (this.docker as unknown as { info(o: { abortSignal: AbortSignal }): Promise<unknown> }).info({ abortSignal }),
      )) as { DockerRootDir?: string };
      return info.DockerRootDir ?? '/var/lib/docker';
    } catch (err) {
      throw classify(err, 'info');
    }
  }

  async ensureNetwork(name: string, opts?: CallOptions): Promise<void> {
    let shared = this.ensuring.get(name);
    if (shared === undefined) {
      // Shared by concurrent callers, so under no one caller's signal (each step has its deadline);
      // a caller whose convergence is aborted stops waiting for it.
      shared = this.ensureNetworkNow(name).finally(() => this.ensuring.delete(name));
      this.ensuring.set(name, shared);
    }
    const signal = opts?.signal;
    if (signal === undefined) return shared;
    const p = shared;
    return withDeadline(`ensure network ${name}`, this.callTimeoutMs * 4, signal, () => p);
  }

  private async ensureNetworkNow(name: string): Promise<void> {
    const named = async () =>
      (await this.call(`list networks ${name}`, undefined, (abortSignal) => this.docker.listNetworks({ filters: { name: [name] }, abortSignal }))).filter(
        (n) => n.Name === name,
      );
    try {
      let found = await named();
      if (found.length === 0) {
        try {
          await this.call(`create network ${name}`, undefined, (abortSignal) =>
            this.docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, abortSignal }),
          );
        } catch (err) {
          if ((err as DockerodeError).statusCode !== 409) throw err; // 409: created by someone else meanwhile
        }
        found = await named();
      }
      if (found.length > 1) {
        const [, ...extra] = [...found].sort((a, b) => byCodeUnit(a.Created, b.Created) || byCodeUnit(a.Id, b.Id));
        // One in use by a container cannot go; the engine then keeps refusing, and says so.
        await Promise.all(
          extra.map((n) =>
            this.call(`remove network ${n.Id.slice(0, 12)}`, undefined, (abortSignal) => this.docker.getNetwork(n.Id).remove({ abortSignal })).catch(
              () => undefined,
            ),
          ),
        );
      }
    } catch (err) {
      throw classify(err, `ensure network ${name}`);
    }
  }
}
