/**
 * Processes named by what they are, not by a pid alone: a pid with its start time (`/proc/<pid>/stat`
 * field 22) is one process, never a later one that got the same pid. Everything here reads /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcRef {
  pid: number;
  /** Start time since boot, in clock ticks, as /proc tells it. */
  start: string;
}

export interface StatFacts {
  ppid: number;
  state: string;
  start: string;
}

/** The parent, state and start time in the text of `/proc/<pid>/stat` (the name may hold spaces and parentheses). */
export function parseStat(text: string): StatFacts | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // After the name: state (field 3), ppid (4), ... starttime (22).
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const [state, ppid] = fields;
  const start = fields[19];
  if (state === undefined || ppid === undefined || start === undefined || !/^\d+$/.test(ppid) || !/^\d+$/.test(start)) return null;
  return { ppid: Number(ppid), state, start };
}

function stat(pid: number): StatFacts | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** A reference to the running process `pid`, or null when there is none. */
export function procRef(pid: number | undefined): ProcRef | null {
  if (pid === undefined) return null;
  const s = stat(pid);
  return s ? { pid, start: s.start } : null;
}

/** Whether `ref`'s process still runs (a zombie does not). */
export function isRunning(ref: ProcRef | null | undefined): boolean {
  if (!ref) return false;
  const s = stat(ref.pid);
  return s !== null && s.start === ref.start && s.state !== 'Z';
}

/** A process's command line, arguments joined by spaces ('' when it is gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** One variable of a process's environment (undefined when unset or unreadable). */
export function environ(pid: number, name: string): string | undefined {
  try {
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) if (kv.startsWith(`${name}=`)) return kv.slice(name.length + 1);
  } catch {
    /* gone, or not ours to read */
  }
  return undefined;
}

export function allPids(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

/** The parent of every process now running. */
export function parentTable(): Map<number, number> {
  const table = new Map<number, number>();
  for (const pid of allPids()) {
    const s = stat(pid);
    if (s) table.set(pid, s.ppid);
  }
  return table;
}

/** `roots` and every process below them in `parentOf` (pid -> parent pid), each once. */
export function withDescendants(roots: Iterable<number>, parentOf: ReadonlyMap<number, number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentOf) {
    if (pid === ppid) continue;
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out = new Set<number>();
  const todo = [...roots];
  while (todo.length > 0) {
    const pid = todo.pop() as number;
    if (out.has(pid)) continue;
    out.add(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** Waits (up to `timeoutMs`) until none of `refs` runs; true when none does. */
export async function waitGone(refs: ProcRef[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!refs.some(isRunning)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then SIGKILL for what still runs after `graceMs`; resolves once all are gone (or after a last deadline). */
export async function terminate(refs: ProcRef[], graceMs: number): Promise<void> {
  const live = refs.filter(isRunning);
  for (const r of live) signal(r.pid, 'SIGTERM');
  if (await waitGone(live, graceMs)) return;
  for (const r of live.filter(isRunning)) signal(r.pid, 'SIGKILL');
  await waitGone(live, 5_000);
}
