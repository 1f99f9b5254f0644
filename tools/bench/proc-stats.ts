/** Resident memory and CPU time of a process, read from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface ProcSample {
  /** Resident set size in bytes. */
  rss: number;
  /** User + system CPU time in milliseconds since the process started. */
  cpuMs: number;
  /** When the sample was taken (performance.now()). */
  at: number;
}

export function sampleProc(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  // Fields after the command (which may contain spaces) start after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return { rss: rssKb * 1024, cpuMs: (ticks * 1000) / TICKS_PER_SECOND, at: performance.now() };
}

/** CPU use between two samples, as a share of one core (1 = one core busy). */
export function cpuShare(a: ProcSample, b: ProcSample): number {
  return (b.cpuMs - a.cpuMs) / Math.max(1, b.at - a.at);
}

/** Pid of the process whose command line contains every one of `parts` (e.g. nats-server and its port). */
export function findPid(parts: string[]): number | null {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (parts.every((p) => argv.includes(p))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

/** Pid of the nats-server that `startNatsServer()` started on `port`. */
export function natsServerPid(port: number): number {
  const pid = findPid(['nats-server', '-p', String(port)]);
  if (pid === null) throw new Error(`no nats-server process found for port ${port}`);
  return pid;
}

/** Load averages and CPU share busy (all cores) over a window, for the machine note in RESULTS.md. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return [a ?? Number.NaN, b ?? Number.NaN, c ?? Number.NaN];
}

export function cpuTotals(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((s, x) => s + x, 0);
  return { busy: total - idle, total };
}
