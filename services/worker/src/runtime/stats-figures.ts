import type { ContainerStats } from './container-runtime.ts';

/**
 * The part of the engine's `GET /containers/<id>/stats?stream=false` answer the figures come from
 * (cgroup v1 and v2 differ in the memory stats' names).
 */
export interface RawStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

const finite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);

/**
 * CPU as `docker stats` computes it: the container's share of the host's CPU time between the
 * engine's two readings, times the cores (so one busy core is 100). Memory without the reclaimable
 * page cache (`inactive_file` on cgroup v2, `total_inactive_file`/`cache` on v1), as `docker stats`
 * shows it. Pure; figures the engine left out (a stopped container, no previous reading) are null.
 */
export function statsFigures(raw: RawStats): ContainerStats {
  const cpu = raw.cpu_stats;
  const pre = raw.precpu_stats;
  let cpuPercent: number | null = null;
  const total = cpu?.cpu_usage?.total_usage;
  const preTotal = pre?.cpu_usage?.total_usage;
  const system = cpu?.system_cpu_usage;
  const preSystem = pre?.system_cpu_usage;
  if (finite(total) && finite(preTotal) && finite(system) && finite(preSystem) && system > preSystem && preSystem > 0) {
    const cores = finite(cpu?.online_cpus) && cpu.online_cpus > 0 ? cpu.online_cpus : (cpu?.cpu_usage?.percpu_usage?.length ?? 1);
    cpuPercent = Math.max(0, ((total - preTotal) / (system - preSystem)) * cores * 100);
    cpuPercent = Math.round(cpuPercent * 100) / 100;
  }
  const mem = raw.memory_stats;
  let memoryBytes: number | null = null;
  if (finite(mem?.usage)) {
    const st = mem.stats ?? {};
    const cache = st.inactive_file ?? st.total_inactive_file ?? st.cache ?? 0;
    memoryBytes = Math.max(0, Math.round(mem.usage - (finite(cache) && cache <= mem.usage ? cache : 0)));
  }
  const limit = mem?.limit;
  return { cpuPercent, memoryBytes, memoryLimitBytes: finite(limit) && limit > 0 ? Math.round(limit) : null };
}
