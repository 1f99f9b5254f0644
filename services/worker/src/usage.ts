import { statfs } from 'node:fs/promises';
import os from 'node:os';
import type { ContainerUsage, HostUsage } from '@nebula/contracts';
import { forEachLimit } from './concurrency.ts';
import { type ContainerRuntime, LABELS } from './runtime/container-runtime.ts';

/**
 * The host's usage for reports, gathered every WORKER_REPORT_INTERVAL_SECONDS (not at every
 * heartbeat: the engine takes about a second per container to measure CPU). Host CPU is the share
 * of all cores busy between two samples (from the kernel's per-core times); memory is total minus
 * available; the disk is the file system of the engine's data root as this process sees it (a
 * worker in a container sees it when that path is mounted; otherwise the disk is null). Every
 * outside call has a deadline; a figure that could not be read is null, and one failure never
 * fails the sample.
 */

/** The kernel's CPU times summed over cores (ms). */
export interface CpuTimes {
  idle: number;
  total: number;
}

export function readCpuTimes(cpus: readonly os.CpuInfo[] = os.cpus()): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const c of cpus) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
  }
  return { idle, total };
}

/** Percent of all cores busy between two readings (0..100, two decimals); null without an interval. */
export function cpuPercent(prev: CpuTimes | null, cur: CpuTimes): number | null {
  if (prev === null) return null;
  const total = cur.total - prev.total;
  if (!(total > 0)) return null;
  const busy = total - (cur.idle - prev.idle);
  return Math.round(Math.min(100, Math.max(0, (busy / total) * 100)) * 100) / 100;
}

export interface UsageSources {
  runtime: ContainerRuntime;
  hostId: string;
  cores: number;
  /** Deadline of each outside call (engine, file system). */
  callTimeoutMs: number;
  cpuTimes?: () => CpuTimes;
  memory?: () => { total: number; free: number };
  load?: () => number;
  statfs?: (path: string) => Promise<{ bsize: number; blocks: number; bavail: number }>;
  now?: () => Date;
}

/** Stats of several containers at once, not all of a large host at once. */
const STATS_IN_PARALLEL = 4;

function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export class UsageGatherer {
  readonly #s: Required<UsageSources>;
  #cpu: CpuTimes;
  /** The latest sample; null until the first one. */
  latest: HostUsage | null = null;

  constructor(sources: UsageSources) {
    this.#s = {
      cpuTimes: () => readCpuTimes(),
      memory: () => ({ total: os.totalmem(), free: os.freemem() }),
      load: () => os.loadavg()[0] ?? 0,
      statfs: (path) => statfs(path),
      now: () => new Date(),
      ...sources,
    };
    // A reading now, so that the first sample has a CPU figure too.
    this.#cpu = this.#s.cpuTimes();
  }

  /** Gathers a sample and keeps it as `latest`. Never throws: what failed is null in the sample. */
  async gather(): Promise<HostUsage> {
    const s = this.#s;
    const cur = s.cpuTimes();
    const used = cpuPercent(this.#cpu, cur);
    this.#cpu = cur;
    const mem = s.memory();
    const [disk, containers] = await Promise.all([this.#disk(), this.#containers()]);
    const usage: HostUsage = {
      gathered_at: s.now().toISOString(),
      cpu: { cores: Math.max(1, Math.round(s.cores)), used_percent: used, load_1m: Math.max(0, Math.round(s.load() * 100) / 100) },
      memory: { used_bytes: Math.max(0, Math.round(mem.total - mem.free)), total_bytes: Math.round(mem.total) },
      disk,
      containers,
    };
    this.latest = usage;
    return usage;
  }

  async #disk(): Promise<HostUsage['disk']> {
    const s = this.#s;
    try {
      const path = await s.runtime.dataRoot({ signal: AbortSignal.timeout(s.callTimeoutMs) });
      const fs = await withTimeout(`statfs ${path}`, s.callTimeoutMs, s.statfs(path));
      const total = fs.blocks * fs.bsize;
      return { path, total_bytes: Math.round(total), used_bytes: Math.max(0, Math.round(total - fs.bavail * fs.bsize)) };
    } catch {
      return null;
    }
  }

  async #containers(): Promise<ContainerUsage[]> {
    const s = this.#s;
    let observed: Awaited<ReturnType<ContainerRuntime['listContainers']>>;
    try {
      observed = await s.runtime.listContainers(s.hostId, { signal: AbortSignal.timeout(s.callTimeoutMs) });
    } catch {
      return [];
    }
    const running = observed.filter((c) => c.state === 'running').sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const out: ContainerUsage[] = new Array(running.length);
    // Never throws: a container whose stats fail shows null figures.
    await forEachLimit([...running.entries()], STATS_IN_PARALLEL, async ([i, c]) => {
      const st = await s.runtime.containerStats(c.id, { signal: AbortSignal.timeout(s.callTimeoutMs), name: c.name }).catch(() => null);
      out[i] = {
        id: c.id,
        name: c.name,
        app: c.labels[LABELS.app] ?? null,
        cpu_percent: st?.cpuPercent ?? null,
        memory_bytes: st?.memoryBytes ?? null,
        memory_limit_bytes: st?.memoryLimitBytes ?? null,
      };
    });
    return out;
  }
}
