/**
 * Several Docker hosts on one machine: the end-to-end tests' fleet and `npm start`'s local fleet.
 *
 *   root namespace                                 netns <prefix><id>h<n> (one per host)
 *   ┌──────────────────────────────┐              ┌──────────────────────────────────┐
 *   │ bridge <prefix><id> 10.N.X.1 │──veth──────▶ │ eth0 10.N.X.(10+n)                │
 *   │ socat 10.N.X.1:5000 ───────▶ │              │ dockerd (own data, exec, socket)  │
 *   │   registry 127.0.0.1:5000    │ ◀──────────  │ socat 127.0.0.1:5000 -> X.1:5000  │
 *   └──────────────────────────────┘              └──────────────────────────────────┘
 *
 * Each host has its own network namespace and Docker engine (a second engine in the root namespace
 * breaks the first). Its engine answers on a unix socket reachable from the root namespace, so a
 * worker for that host runs as an ordinary process with DOCKER_HOST pointing at it. Published ports
 * answer on the host's address. Inside every host, 127.0.0.1:5000 reaches the machine's registry, so
 * one image reference works everywhere. N is the family's network (naming.ts): each family (tests,
 * local fleet) has its own names and addresses. What a run makes is recorded in its folder as it is
 * made (record.ts), and removed by the run's own names only (remove.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { poll, run, tryRun } from './exec.ts';
import { type HostFamily, MAX_HOSTS, newRunId, parseIpAddrs, pickSubnet, runIdOfName, runNames } from './naming.ts';
import { isRunning, type ProcRef, procRef } from './procs.ts';
import { type RunRecord, writeRecord } from './record.ts';
import { listLinks, listNetns, removeRun } from './remove.ts';

export interface SimulatedHost {
  /** e.g. `host-1` */
  name: string;
  netns: string;
  /** The host's IP address, where its published ports answer. */
  address: string;
  /** `unix:///.../docker.sock` */
  dockerHost: string;
  /** The host's folder (engine data, socket, engine log). */
  dir: string;
  /** Runs the docker CLI against this host's engine. */
  docker(...args: string[]): Promise<string>;
  /** The engine's process while it runs. */
  engine(): ProcRef | null;
  stopEngine(): Promise<void>;
  startEngine(): Promise<void>;
  /**
   * Freezes the engine's dockerd with SIGSTOP: its socket still accepts connections, nothing
   * answers (a hung engine; its containers keep running). `thawEngine()` sends SIGCONT.
   */
  freezeEngine(): Promise<void>;
  thawEngine(): Promise<void>;
}

export interface SimulatedHosts {
  id: string;
  /** The run's folder (`<tmp>/<dirPrefix>-<pid>-<id>`). */
  dir: string;
  hosts: SimulatedHost[];
  /**
   * The machine's address on the hosts' bridge (their default gateway): what a host dials to reach
   * a port the machine listens on, e.g. one a container of the root engine publishes.
   */
  gateway: string;
  /**
   * Makes 127.0.0.1:`port` inside every host reach 127.0.0.1:`port` of the machine, as is done for
   * the registry (e.g. a second registry a test controls). Undone by cleanup().
   */
  relay(port: number): Promise<void>;
  /** Stops everything and removes every trace of the run. */
  cleanup(): Promise<void>;
}

export interface StartHostsOptions {
  family: HostFamily;
  hosts: number;
  /** Host `n` is `<namePrefix>-<n>` (default `host`). */
  namePrefix?: string;
  /** Local images (of the machine's engine) loaded into every host's engine. */
  images?: string[];
  registryPort?: number;
  /**
   * Start the engines and relays in process groups of their own, so a Ctrl-C at a terminal reaches
   * only the owner, which then stops them in order (default false: they share the owner's group).
   */
  detached?: boolean;
}

/** Stops a child: SIGTERM, SIGKILL after `graceMs`. */
function stopChild(p: ChildProcess | null, graceMs: number): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), graceMs).unref();
  });
}

/** A run id no namespace or link of the family already has. */
async function freshId(family: HostFamily): Promise<string> {
  const taken = new Set([...(await listNetns()), ...(await listLinks())].map((n) => runIdOfName(family, n)));
  for (;;) {
    const id = newRunId();
    if (!taken.has(id)) return id;
  }
}

/**
 * Starts `hosts` hosts of `family` and loads `images` (from the machine's engine) into each.
 * Needs root, iproute2, socat and dockerd.
 */
export async function startHosts(opts: StartHostsOptions): Promise<SimulatedHosts> {
  const { family } = opts;
  if (!Number.isInteger(opts.hosts) || opts.hosts < 0 || opts.hosts > MAX_HOSTS)
    throw new Error(`hosts: ${opts.hosts} is not a whole number in 0..${MAX_HOSTS}`);
  const id = await freshId(family);
  const subnet = pickSubnet(family, parseIpAddrs(await tryRun('ip', ['-4', '-o', 'addr', 'show'])));
  if (subnet === null) throw new Error(`no free /24 left in 10.${family.network}.0.0/16 for simulated hosts`);
  const names = runNames(family, id, subnet, process.pid);
  const registryPort = opts.registryPort ?? 5000;
  const root = join(tmpdir(), names.dirName);
  const owner = procRef(process.pid);
  if (!owner) throw new Error('cannot read this process in /proc');
  // The folder first, before any name: cleanupStaleHosts takes a name without a folder for an orphan.
  mkdirSync(root, { recursive: true });
  const record: RunRecord = { v: 1, family, id, owner, bridge: names.bridge, gateway: names.gateway, hosts: [], procs: [] };
  writeRecord(root, record);
  const children: ChildProcess[] = [];
  const hosts: SimulatedHost[] = [];
  const detached = opts.detached ?? false;

  const track = (child: ChildProcess): ChildProcess => {
    children.push(child);
    const ref = procRef(child.pid);
    if (ref) {
      record.procs.push(ref);
      writeRecord(root, record);
    }
    return child;
  };
  const spawnTracked = (cmd: string, args: string[], stdio: 'ignore' | ['ignore', number, number] = 'ignore') => {
    const child = spawn(cmd, args, { stdio, detached });
    child.on('error', () => undefined);
    return track(child);
  };

  let cleaned: Promise<void> | null = null;
  const cleanup = () => {
    cleaned ??= (async () => {
      await Promise.all(hosts.map((h) => h.stopEngine()));
      await Promise.all(children.map((p) => stopChild(p, 10_000)));
      // Whatever is left (a container an engine did not stop, a relay that ignored SIGTERM).
      await removeRun(family, root);
    })();
    return cleaned;
  };

  try {
    await run('ip', ['link', 'add', names.bridge, 'type', 'bridge']);
    await run('ip', ['addr', 'add', `${names.gateway}/24`, 'dev', names.bridge]);
    await run('ip', ['link', 'set', names.bridge, 'up']);
    spawnTracked('socat', [`TCP-LISTEN:${registryPort},bind=${names.gateway},fork,reuseaddr`, `TCP:127.0.0.1:${registryPort}`]);

    for (let n = 1; n <= opts.hosts; n++) {
      const name = `${opts.namePrefix ?? 'host'}-${n}`;
      const netns = names.netns(n);
      const address = names.address(n);
      const veth = names.veth(n);
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      record.hosts.push({ name, netns, veth, address });
      writeRecord(root, record);
      await run('ip', ['netns', 'add', netns]);
      await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      await run('ip', ['link', 'set', veth, 'master', names.bridge, 'up']);
      await run('ip', ['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', netns, 'route', 'add', 'default', 'via', names.gateway]);
      const nsenter = [`--net=/var/run/netns/${netns}`];
      spawnTracked('nsenter', [...nsenter, 'socat', `TCP-LISTEN:${registryPort},bind=127.0.0.1,fork,reuseaddr`, `TCP:${names.gateway}:${registryPort}`]);

      const socket = join(dir, 'docker.sock');
      const dockerHost = `unix://${socket}`;
      let engine: ChildProcess | null = null;
      let frozen = false;
      const engineRunning = () => engine !== null && engine.exitCode === null && engine.signalCode === null;
      // nsenter execs dockerd (no --fork), so the child's pid is dockerd's.
      const signalEngine = (sig: NodeJS.Signals) => {
        if (engine?.pid === undefined || !engineRunning()) throw new Error(`the engine of ${name} is not running`);
        process.kill(engine.pid, sig);
      };
      const host: SimulatedHost = {
        name,
        netns,
        address,
        dockerHost,
        dir,
        docker: (...args: string[]) => run('docker', ['-H', dockerHost, ...args], 120_000),
        engine: () => {
          const ref = engineRunning() ? procRef(engine?.pid) : null;
          return ref && isRunning(ref) ? ref : null;
        },
        async startEngine() {
          if (engineRunning()) return;
          const log = openSync(join(dir, 'dockerd.log'), 'a');
          engine = spawnTracked(
            'nsenter',
            [
              ...nsenter,
              'dockerd',
              '--host',
              dockerHost,
              '--data-root',
              join(dir, 'data'),
              '--exec-root',
              join(dir, 'exec'),
              '--pidfile',
              join(dir, 'docker.pid'),
            ],
            ['ignore', log, log],
          );
          const started = engine;
          await poll(
            `docker engine of ${name}`,
            async () => {
              if (started.exitCode !== null || started.signalCode !== null) throw new Error(`the engine of ${name} exited (see ${join(dir, 'dockerd.log')})`);
              return (await run('docker', ['-H', dockerHost, 'version', '--format', '{{.Server.Version}}'], 10_000)).trim() || undefined;
            },
            60_000,
            200,
          );
        },
        async stopEngine() {
          if (frozen) await host.thawEngine();
          await stopChild(engine, 20_000);
        },
        async freezeEngine() {
          signalEngine('SIGSTOP');
          frozen = true;
        },
        async thawEngine() {
          signalEngine('SIGCONT');
          frozen = false;
        },
      };
      hosts.push(host);
    }
    // The engines start together (each takes a second or two).
    await Promise.all(hosts.map((h) => h.startEngine()));
    if (opts.images && opts.images.length > 0) {
      const tar = join(root, 'images.tar');
      await run('docker', ['save', '-o', tar, ...opts.images], 300_000);
      await Promise.all(hosts.map((h) => run('docker', ['-H', h.dockerHost, 'load', '-q', '-i', tar], 300_000)));
      rmSync(tar);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  const relay = async (port: number) => {
    spawnTracked('socat', [`TCP-LISTEN:${port},bind=${names.gateway},fork,reuseaddr`, `TCP:127.0.0.1:${port}`]);
    for (const h of hosts) {
      spawnTracked('nsenter', [`--net=/var/run/netns/${h.netns}`, 'socat', `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `TCP:${names.gateway}:${port}`]);
    }
    // Both ends listening: a connection from inside a host reaches the machine's port.
    const first = hosts[0];
    if (!first) throw new Error(`relay(${port}): the run has no hosts`);
    await poll(
      `relay of port ${port} in ${first.name}`,
      async () =>
        (await tryRun('nsenter', [`--net=/var/run/netns/${first.netns}`, 'sh', '-c', `ss -ltn 'sport = :${port}' | grep -q LISTEN && echo up`])).includes('up'),
      5_000,
      50,
    );
  };
  return { id, dir: root, hosts, gateway: names.gateway, relay, cleanup };
}
