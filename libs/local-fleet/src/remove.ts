/**
 * Removing a run of simulated hosts, whatever state it is in (its owner's cleanup after a clean run,
 * or a later run after a crash, a kill -9, a reboot): only what is the run's, found by its folder
 * and its id.
 *
 *   1. engines still running: SIGTERM, so each stops its containers (up to 15 s)
 *   2. every process left of the run, and everything below it: the processes it recorded, those in
 *      its namespaces, those whose command line names its folder (dockerd, containerd, the shims),
 *      those in the cgroups of its containers: SIGKILL (and those cgroups, empty now, go)
 *   3. its namespaces and links (veths, the bridge)
 *   4. the mounts under its folder, then the folder
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { tryRun } from './exec.ts';
import { type HostFamily, parseRunDir, runIdOfName } from './naming.ts';
import { allPids, cmdline, isRunning, type ProcRef, parentTable, procRef, signal, terminate, waitGone, withDescendants } from './procs.ts';
import { readRecord } from './record.ts';

/** The first word of each line of `ip netns list`. */
export function parseNetnsList(output: string): string[] {
  return output
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** The interface names of `ip -o link show` (`7: name@peer: <...>`). */
export function parseLinkNames(output: string): string[] {
  const names: string[] = [];
  for (const line of output.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m?.[1]) names.push(m[1]);
  }
  return names;
}

/** Decodes the octal escapes of /proc/mounts (`\040` is a space). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** The mount points in `mounts` (the text of /proc/mounts) at or under `dir`, deepest first. */
export function mountsUnder(mounts: string, dir: string): string[] {
  const base = dir.replace(/\/+$/, '');
  const out = new Set<string>();
  for (const line of mounts.split('\n')) {
    const field = line.split(' ')[1];
    if (field === undefined) continue;
    const point = unescapeMount(field);
    if (point === base || point.startsWith(`${base}/`)) out.add(point);
  }
  return [...out].sort((a, b) => b.length - a.length || (a < b ? 1 : -1));
}

export async function listNetns(): Promise<string[]> {
  return parseNetnsList(await tryRun('ip', ['netns', 'list']));
}

export async function listLinks(): Promise<string[]> {
  return parseLinkNames(await tryRun('ip', ['-o', 'link', 'show']));
}

async function netnsPids(ns: string): Promise<number[]> {
  return (await tryRun('ip', ['netns', 'pids', ns]))
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/**
 * The cgroups of the containers whose ids are in `<dataRoot>/containers/` (those that exist), and
 * the processes in them.
 */
function containerGroups(dataRoots: string[]): { groups: string[]; pids: number[] } {
  const ids: string[] = [];
  for (const d of dataRoots) {
    try {
      for (const e of readdirSync(join(d, 'containers'))) if (/^[0-9a-f]{64}$/.test(e)) ids.push(e);
    } catch {
      /* no containers */
    }
  }
  if (ids.length === 0) return { groups: [], pids: [] };
  const groups: string[] = [];
  const cg = '/sys/fs/cgroup';
  let controllers: string[] = [];
  try {
    controllers = readdirSync(cg);
  } catch {
    return { groups: [], pids: [] };
  }
  for (const id of ids) {
    // cgroup v2 (cgroupfs or systemd driver), then v1: one folder per controller.
    groups.push(join(cg, 'docker', id), join(cg, 'system.slice', `docker-${id}.scope`));
    for (const c of controllers) groups.push(join(cg, c, 'docker', id), join(cg, c, 'system.slice', `docker-${id}.scope`));
  }
  const pids = new Set<number>();
  const found: string[] = [];
  for (const g of groups) {
    try {
      for (const l of readFileSync(join(g, 'cgroup.procs'), 'utf8').split('\n')) if (/^\d+$/.test(l.trim())) pids.add(Number(l.trim()));
      found.push(g);
    } catch {
      /* not there */
    }
  }
  return { groups: found, pids: [...pids] };
}

/** The dockerd processes of the run (their command line names the run's folder). */
function enginesOf(dir: string): ProcRef[] {
  const out: ProcRef[] = [];
  for (const pid of allPids()) {
    const c = cmdline(pid);
    if (c.includes('dockerd') && c.includes(`--data-root ${dir}/`)) {
      const r = procRef(pid);
      if (r) out.push(r);
    }
  }
  return out;
}

/** This process and its ancestors: never signalled. */
function selfAndAncestors(parentOf: ReadonlyMap<number, number>): Set<number> {
  const out = new Set<number>();
  let pid: number | undefined = process.pid;
  while (pid !== undefined && pid > 0 && !out.has(pid)) {
    out.add(pid);
    pid = parentOf.get(pid);
  }
  return out;
}

/**
 * Removes the run in `dir` (a folder named `<dirPrefix>-<pid>-<id>` in the temporary directory) and
 * whatever of it is left on the machine. Safe to call on a run partly removed, or already gone.
 */
export async function removeRun(family: HostFamily, dir: string): Promise<void> {
  const record = readRecord(dir);
  const id = record?.id ?? parseRunDir(family, basename(dir))?.id;
  if (!id) throw new Error(`${dir} is not a run folder of the ${family.prefix} hosts`);
  const names = (list: string[]) => list.filter((n) => runIdOfName(family, n) === id);
  const netns = [...new Set([...(record?.hosts.map((h) => h.netns) ?? []), ...names(await listNetns())])];

  // 1. Engines stop their containers on SIGTERM.
  await terminate(enginesOf(dir), 15_000);

  // 2. What is left, and everything below it.
  const roots = new Set<number>();
  for (const r of record?.procs ?? []) if (isRunning(r)) roots.add(r.pid);
  for (const ns of netns) for (const pid of await netnsPids(ns)) roots.add(pid);
  for (const pid of allPids()) if (cmdline(pid).includes(`${dir}/`)) roots.add(pid);
  const dataRoots = existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => join(dir, e.name, 'data'))
    : [];
  const containers = containerGroups(dataRoots);
  for (const pid of containers.pids) roots.add(pid);
  const parents = parentTable();
  const spare = selfAndAncestors(parents);
  const doomed = [...withDescendants(roots, parents)]
    .filter((pid) => !spare.has(pid))
    .map(procRef)
    .filter((r): r is ProcRef => r !== null);
  for (const r of doomed) signal(r.pid, 'SIGKILL');
  await waitGone(doomed, 5_000);
  // An engine that was killed leaves its containers' cgroups (empty now) behind.
  for (const g of containers.groups) {
    try {
      rmdirSync(g);
    } catch {
      /* removed by its engine, or not empty */
    }
  }

  // 3. Namespaces and links (veths before the bridge).
  for (const ns of netns) await tryRun('ip', ['netns', 'del', ns]);
  const links = [...new Set([...(record?.hosts.map((h) => h.veth) ?? []), ...(record ? [record.bridge] : []), ...names(await listLinks())])];
  links.sort((a, b) => b.length - a.length);
  const present = new Set(await listLinks());
  for (const l of links) if (present.has(l)) await tryRun('ip', ['link', 'del', l]);

  // 4. Mounts, then the folder.
  let mounts = '';
  try {
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch {
    /* none readable */
  }
  for (const m of mountsUnder(mounts, dir)) await tryRun('umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true });
}

/** Whether the owner of a run folder still runs (by the record's pid and start time; without one, by the pid). */
function ownerRuns(family: HostFamily, dir: string): boolean {
  const record = readRecord(dir);
  if (record) return isRunning(record.owner);
  const parsed = parseRunDir(family, basename(dir));
  if (!parsed) return false;
  try {
    process.kill(parsed.pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes what runs of `family` whose owner no longer runs left behind (after a crash or a kill -9),
 * and namespaces and links of the family whose run has no folder at all (the temporary directory was
 * emptied). Runs whose owner still runs are left alone, whoever started them.
 */
export async function cleanupStaleHosts(family: HostFamily): Promise<string[]> {
  // Names first, folders after: a run makes its folder before any name, so a name seen here whose
  // run has no folder below is an orphan (or the run has just removed both).
  const nsNames = await listNetns();
  const linkNames = await listLinks();
  const removed: string[] = [];
  const ids = new Set<string>();
  for (const entry of readdirSync(tmpdir())) {
    const parsed = parseRunDir(family, entry);
    if (!parsed) continue;
    ids.add(parsed.id);
    const dir = join(tmpdir(), entry);
    if (ownerRuns(family, dir)) continue;
    await removeRun(family, dir);
    removed.push(parsed.id);
  }
  const orphanNs = nsNames.filter((n) => {
    const id = runIdOfName(family, n);
    return id !== null && !ids.has(id);
  });
  if (orphanNs.length > 0) {
    const roots: number[] = [];
    for (const ns of orphanNs) roots.push(...(await netnsPids(ns)));
    const parents = parentTable();
    const spare = selfAndAncestors(parents);
    for (const pid of withDescendants(roots, parents)) if (!spare.has(pid)) signal(pid, 'SIGKILL');
    for (const ns of orphanNs) await tryRun('ip', ['netns', 'del', ns]);
  }
  const orphanLinks = linkNames.filter((n) => {
    const id = runIdOfName(family, n);
    return id !== null && !ids.has(id);
  });
  orphanLinks.sort((a, b) => b.length - a.length);
  for (const l of orphanLinks) await tryRun('ip', ['link', 'del', l]);
  for (const n of [...orphanNs, ...orphanLinks]) {
    const id = runIdOfName(family, n);
    if (id && !removed.includes(id)) removed.push(id);
  }
  return removed;
}
