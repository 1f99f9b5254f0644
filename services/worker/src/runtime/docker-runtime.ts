import { parseImageReference } from '@nebula/contracts';
import type Docker from 'dockerode';
import {
  ContainerConfigError,
  EngineUnavailableError,
  ImageNotFoundError,
  NameConflictError,
  PortConflictError,
  RegistryUnavailableError,
  type WorkerError,
} from '../errors.ts';
import { type ContainerDetails, type ContainerRuntime, type ContainerSpec, type HealthStatus, type ImageInfo, type ImageSummary, LABELS, type ObservedContainer, OWNER } from './container-runtime.ts';
import type { RegistryCredentials } from './registry-auth.ts';

interface DockerodeError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
}

const ENGINE_DOWN = new Set(['ECONNREFUSED', 'ENOENT', 'EPIPE', 'ECONNRESET', 'ETIMEDOUT', 'EACCES', 'EHOSTUNREACH', 'ENOTFOUND']);

function messageOf(err: unknown): string {
  const e = err as DockerodeError;
  return (e?.json?.message ?? e?.message ?? String(err)).trim();
}

/** Engine unreachable becomes EngineUnavailableError; anything else goes through `other`. */
function classify(err: unknown, what: string, other: (msg: string, status: number | undefined) => WorkerError): WorkerError {
  const e = err as DockerodeError;
  if (e?.code !== undefined && ENGINE_DOWN.has(e.code)) return new EngineUnavailableError(`${what}: docker engine unreachable (${e.code})`, { cause: err });
  const msg = messageOf(err);
  const wrapped = other(`${what}: ${msg}`, e?.statusCode);
  (wrapped as { cause?: unknown }).cause = err;
  return wrapped;
}

function isPullNotFound(msg: string): boolean {
  return /manifest unknown|not found|does not exist|pull access denied|unauthorized|authentication required|denied|invalid reference/i.test(msg);
}

function createError(msg: string, status: number | undefined): WorkerError {
  if (/port is already allocated|address already in use/i.test(msg)) return new PortConflictError(msg);
  if (status === 409 || /name .* is already in use/i.test(msg)) return new NameConflictError(msg);
  if (status === 404 && /no such image/i.test(msg)) return new ImageNotFoundError(msg);
  if (status !== undefined && status >= 500 && /connection refused|timeout|i\/o/i.test(msg)) return new EngineUnavailableError(msg);
  return new ContainerConfigError(msg);
}

const notFound = (err: unknown) => (err as DockerodeError)?.statusCode === 404;

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

/** The real ContainerRuntime: a Docker engine through dockerode. */
export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly auth: (registry: string) => RegistryCredentials | undefined;
  private readonly ensuring = new Map<string, Promise<void>>();

  constructor(docker: Docker, opts: { auth?: (registry: string) => RegistryCredentials | undefined } = {}) {
    this.docker = docker;
    this.auth = opts.auth ?? (() => undefined);
  }

  async ping(): Promise<boolean> {
    try {
      await this.docker.ping();
      return true;
    } catch {
      return false;
    }
  }

  async listContainers(hostId: string): Promise<ObservedContainer[]> {
    let list: Docker.ContainerInfo[];
    try {
      list = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.owner}=${OWNER}`, `${LABELS.host}=${hostId}`] } });
    } catch (err) {
      throw classify(err, 'list containers', (m) => new EngineUnavailableError(m));
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

  async create(spec: ContainerSpec): Promise<string> {
    const hostNet = spec.networks[0] === 'host' || spec.networks[0] === 'none';
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostPort: string }>> = {};
    if (!hostNet) {
      for (const p of spec.ports) {
        const key = `${p.container}/tcp`;
        exposed[key] = {};
        (bindings[key] ??= []).push({ HostPort: String(p.host) });
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
        RestartPolicy: { Name: 'unless-stopped' },
        NetworkMode: spec.networks[0] ?? 'bridge',
        ...(spec.memoryLimitMb !== null ? { Memory: spec.memoryLimitMb * 1024 * 1024 } : {}),
        ...(spec.cpuLimit !== null ? { NanoCpus: Math.round(spec.cpuLimit * NS_PER_S) } : {}),
        // Rotation keeps a chatty container from filling the disk (json-file keeps everything by default).
        ...(spec.log !== undefined ? { LogConfig: { Type: 'json-file', Config: { 'max-size': `${spec.log.maxSizeMb}m`, 'max-file': String(spec.log.maxFiles) } } } : {}),
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
      id = (await this.docker.createContainer(opts)).id;
    } catch (err) {
      throw classify(err, `create ${spec.name}`, createError);
    }
    try {
      for (const net of spec.networks.slice(1)) await this.docker.getNetwork(net).connect({ Container: id });
    } catch (err) {
      await this.remove(id).catch(() => undefined);
      throw classify(err, `connect ${spec.name} to its networks`, createError);
    }
    return id;
  }

  async start(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if ((err as DockerodeError).statusCode === 304) return; // already running
      throw classify(err, `start ${id.slice(0, 12)}`, createError);
    }
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    const c = this.docker.getContainer(id);
    try {
      // The engine sends SIGTERM, then SIGKILL after `t` seconds.
      await c.stop({ t: timeoutSeconds });
    } catch (err) {
      const status = (err as DockerodeError).statusCode;
      if (status === 304 || status === 404) return;
      try {
        await c.kill();
      } catch (killErr) {
        const s = (killErr as DockerodeError).statusCode;
        if (s === 404 || s === 409) return; // gone, or not running any more
        throw classify(killErr, `stop ${id.slice(0, 12)}`, (m) => new EngineUnavailableError(m));
      }
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true });
    } catch (err) {
      const e = err as DockerodeError;
      if (e.statusCode === 404 || (e.statusCode === 409 && /already in progress/i.test(messageOf(err)))) return;
      throw classify(err, `remove ${id.slice(0, 12)}`, (m) => new EngineUnavailableError(m));
    }
  }

  async restart(id: string, timeoutSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).restart({ t: timeoutSeconds });
    } catch (err) {
      if (notFound(err)) return;
      throw classify(err, `restart ${id.slice(0, 12)}`, (m) => new EngineUnavailableError(m));
    }
  }

  async inspect(id: string): Promise<ContainerDetails | null> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(id).inspect();
    } catch (err) {
      if (notFound(err)) return null;
      throw classify(err, `inspect ${id.slice(0, 12)}`, (m) => new EngineUnavailableError(m));
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

  async pull(image: string): Promise<void> {
    const registry = parseImageReference(image).registry;
    const auth = this.auth(registry);
    const pullError = (msg: string, status: number | undefined): WorkerError =>
      isPullNotFound(msg) && !/no such host|dial tcp|connection refused|timeout/i.test(msg)
        ? new ImageNotFoundError(msg)
        : status !== undefined && status < 500 && status !== 429
          ? new ImageNotFoundError(msg)
          : new RegistryUnavailableError(msg);
    try {
      const stream = await this.docker.pull(image, auth ? { authconfig: auth } : {});
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
          if (err) return reject(err);
          const failed = out.find((o) => o.error !== undefined);
          if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error));
          resolve();
        });
      });
    } catch (err) {
      throw classify(err, `pull ${image}`, pullError);
    }
  }

  async imageInfo(image: string): Promise<ImageInfo | null> {
    let info: Docker.ImageInspectInfo;
    try {
      info = await this.docker.getImage(image).inspect();
    } catch (err) {
      if (notFound(err)) return null;
      throw classify(err, `inspect image ${image}`, (m) => new EngineUnavailableError(m));
    }
    const repo = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
    const digests = info.RepoDigests ?? [];
    return { id: info.Id, digest: digests.find((d) => d.startsWith(`${repo}@`)) ?? digests[0] ?? null };
  }

  async listImages(): Promise<ImageSummary[]> {
    try {
      const [images, containers] = await Promise.all([this.docker.listImages(), this.docker.listContainers({ all: true })]);
      const used = new Set(containers.map((c) => c.ImageID));
      return images.map((i) => ({ id: i.Id, tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'), inUse: used.has(i.Id) }));
    } catch (err) {
      throw classify(err, 'list images', (m) => new EngineUnavailableError(m));
    }
  }

  async removeImage(ref: string): Promise<boolean> {
    try {
      // Not forced: the engine refuses (409) an image a container uses, or an id with several tags.
      await this.docker.getImage(ref).remove({ noprune: false });
      return true;
    } catch (err) {
      const status = (err as DockerodeError).statusCode;
      if (status === 404 || status === 409) return false;
      throw classify(err, `remove image ${ref}`, (m) => new EngineUnavailableError(m));
    }
  }

  /**
   * Two apps starting together on one host would both find the network missing and both create it:
   * Docker allows two networks of one name (CheckDuplicate is not atomic) and then refuses every
   * container that names it ("network nebula is ambiguous"), for good. So creation is serialised per
   * name within this process, and duplicates made by another process meanwhile are reduced to the
   * oldest one (every racer picks the same).
   */
  async ensureNetwork(name: string): Promise<void> {
    const pending = this.ensuring.get(name);
    if (pending) return pending;
    const p = this.ensureNetworkNow(name).finally(() => this.ensuring.delete(name));
    this.ensuring.set(name, p);
    return p;
  }

  private async ensureNetworkNow(name: string): Promise<void> {
    const named = async () => (await this.docker.listNetworks({ filters: { name: [name] } })).filter((n) => n.Name === name);
    try {
      let found = await named();
      if (found.length === 0) {
        try {
          await this.docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true });
        } catch (err) {
          if ((err as DockerodeError).statusCode !== 409) throw err; // 409: created by someone else meanwhile
        }
        found = await named();
      }
      if (found.length > 1) {
        const [, ...extra] = [...found].sort((a, b) => a.Created.localeCompare(b.Created) || a.Id.localeCompare(b.Id));
        // One in use by a container cannot go; the engine then keeps refusing, and says so.
        await Promise.all(extra.map((n) => this.docker.getNetwork(n.Id).remove().catch(() => undefined)));
      }
    } catch (err) {
      throw classify(err, `ensure network ${name}`, (m) => new EngineUnavailableError(m));
    }
  }
}
