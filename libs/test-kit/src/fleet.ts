/**
 * Several Docker hosts on one machine, for end-to-end tests and benchmarks of the real path.
 *
 *   root namespace                                 netns nbt<id>h<n> (one per host)
 *   ┌──────────────────────────────┐              ┌──────────────────────────────────┐
 *   │ bridge nbt<id> 10.231.X.1    │──veth──────▶ │ eth0 10.231.X.(10+n)              │
 *   │ socat 10.231.X.1:5000 ─────▶ │              │ dockerd (own data, exec, socket)  │
 *   │   registry 127.0.0.1:5000    │ ◀──────────  │ socat 127.0.0.1:5000 -> X.1:5000  │
 *   └──────────────────────────────┘              └──────────────────────────────────┘
 *
 * Each host has its own network namespace and Docker engine (a second engine in the root namespace
 * breaks the first). Its engine answers on a unix socket reachable from the root namespace, so a
 * worker for that host runs as an ordinary process with DOCKER_HOST pointing at it. Published ports
 * answer on the host's address. Inside every host, 127.0.0.1:5000 reaches the stack's registry, so
 * one image reference works everywhere. Everything is torn down by its own names.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './wait.ts';

const exec = promisify(execFile);

export interface TestHost {
  /** e.g. `host-1` */
  name: string;
  netns: string;
  /** The host's IP address, where its published ports answer. */
  address: string;
  /** `unix:///.../docker.sock` */
  dockerHost: string;
  /** Runs the docker CLI against this host's engine. */
  docker(...args: string[]): Promise<string>;
  stopEngine(): Promise<void>;
  startEngine(): Promise<void>;
  /**
   * Freezes the engine's dockerd with SIGSTOP: its socket still accepts connections, nothing
   * answers (a hung engine; its containers keep running). `thawEngine()` sends SIGCONT.
   */
  freezeEngine(): Promise<void>;
  thawEngine(): Promise<void>;
}

export interface Fleet {
  id: string;
  hosts: TestHost[];
  /**
   * Makes 127.0.0.1:`port` inside every host reach 127.0.0.1:`port` of the machine, as is done for
   * the registry (e.g. a second registry a test controls). Undone by cleanup().
   */
  relay(port: number): Promise<void>;
  cleanup(): Promise<void>;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await exec(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

function stopProcess(p: ChildProcess | null, graceMs = 10_000): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), graceMs).unref();
  });
}

/**
 * Starts `count` hosts and loads `images` (from the root engine) into each.
 * Needs root, iproute2, socat and dockerd.
 */
export async function startFleet(opts: { hosts: number; images?: string[]; registryPort?: number }): Promise<Fleet> {
  const id = Math.random().toString(36).slice(2, 7);
  const subnet = 10 + Math.floor(Math.random() * 240);
  const bridge = `nbt${id}`;
  const gateway = `10.231.${subnet}.1`;
  const registryPort = opts.registryPort ?? 5000;
  const root = join(tmpdir(), `nebula-fleet-${process.pid}-${id}`);
  mkdirSync(root, { recursive: true });
  const procs: ChildProcess[] = [];
  const hosts: TestHost[] = [];

  const cleanup = async () => {
    await Promise.all(hosts.map((h) => h.stopEngine()));
    await Promise.all(procs.map((p) => stopProcess(p)));
    for (const [i] of hosts.entries()) await sh('ip', ['link', 'del', `nbt${id}v${i + 1}`]).catch(() => undefined);
    for (const h of hosts) await sh('ip', ['netns', 'del', h.netns]).catch(() => undefined);
    await sh('ip', ['link', 'del', bridge]).catch(() => undefined);
    await sh('sh', ['-c', `grep -o ' ${root}[^ ]*' /proc/mounts | sort -r | xargs -r umount -l`]).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  };

  try {
    await sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await sh('ip', ['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await sh('ip', ['link', 'set', bridge, 'up']);
    const relay = spawn('socat', [`TCP-LISTEN:${registryPort},bind=${gateway},fork,reuseaddr`, `TCP:127.0.0.1:${registryPort}`], { stdio: 'ignore' });
    procs.push(relay);

    for (let n = 1; n <= opts.hosts; n++) {
      const name = `host-${n}`;
      const netns = `nbt${id}h${n}`;
      const address = `10.231.${subnet}.${10 + n}`;
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      const veth = `nbt${id}v${n}`;
      await sh('ip', ['netns', 'add', netns]);
      await sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      await sh('ip', ['link', 'set', veth, 'master', bridge, 'up']);
      await sh('ip', ['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await sh('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
      await sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      await sh('ip', ['-n', netns, 'route', 'add', 'default', 'via', gateway]);
      const nsenter = [`--net=/var/run/netns/${netns}`];
      procs.push(
        spawn('nsenter', [...nsenter, 'socat', `TCP-LISTEN:${registryPort},bind=127.0.0.1,fork,reuseaddr`, `TCP:${gateway}:${registryPort}`], {
          stdio: 'ignore',
        }),
      );

      const socket = join(dir, 'docker.sock');
      const dockerHost = `unix://${socket}`;
      let engine: ChildProcess | null = null;
      let frozen = false;
      // nsenter execs dockerd (no --fork), so the child's pid is dockerd's.
      const signalEngine = (sig: NodeJS.Signals) => {
        if (engine?.pid === undefined || engine.exitCode !== null || engine.signalCode !== null) throw new Error(`the engine of ${name} is not running`);
        process.kill(engine.pid, sig);
      };
      const host: TestHost = {
        name,
        netns,
        address,
        dockerHost,
        docker: (...args: string[]) => sh('docker', ['-H', dockerHost, ...args]),
        async startEngine() {
          if (engine && engine.exitCode === null && engine.signalCode === null) return;
          const log = openSync(join(dir, 'dockerd.log'), 'a');
          engine = spawn(
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
            { stdio: ['ignore', log, log] },
          );
          await waitFor(
            `docker engine of ${name}`,
            async () => (await sh('docker', ['-H', dockerHost, 'version', '--format', '{{.Server.Version}}'])).trim() || undefined,
            60_000,
            200,
          );
        },
        async stopEngine() {
          if (frozen) await host.thawEngine();
          await stopProcess(engine, 20_000);
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
      await host.startEngine();
    }
    if (opts.images && opts.images.length > 0) {
      const tar = join(root, 'images.tar');
      await sh('docker', ['save', '-o', tar, ...opts.images]);
      await Promise.all(hosts.map((h) => h.docker('load', '-q', '-i', tar)));
      rmSync(tar);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  const relay = async (port: number) => {
    procs.push(spawn('socat', [`TCP-LISTEN:${port},bind=${gateway},fork,reuseaddr`, `TCP:127.0.0.1:${port}`], { stdio: 'ignore' }));
    for (const h of hosts) {
      procs.push(
        spawn('nsenter', [`--net=/var/run/netns/${h.netns}`, 'socat', `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `TCP:${gateway}:${port}`], {
          stdio: 'ignore',
        }),
      );
    }
    // Both ends listening: a connection from inside a host reaches the machine's port.
    const first = hosts[0];
    if (!first) throw new Error(`fleet.relay(${port}): the fleet has no hosts`);
    await waitFor(
      `relay of port ${port} in ${first.name}`,
      async () => {
        const r = await exec('nsenter', [`--net=/var/run/netns/${first.netns}`, 'sh', '-c', `ss -ltn 'sport = :${port}' | grep -q LISTEN && echo up`]).catch(
          () => ({ stdout: '' }),
        );
        return r.stdout.includes('up') || undefined;
      },
      5_000,
      50,
    );
  };
  return { id, hosts, relay, cleanup };
}

/** Removes what fleets of processes that no longer run left behind (after a crash or a kill -9). */
export async function cleanupStaleFleets(): Promise<void> {
  for (const entry of readdirSync(tmpdir())) {
    const m = /^nebula-fleet-(\d+)-([a-z0-9]+)$/.exec(entry);
    if (!m) continue;
    const [, pid, id] = m;
    try {
      process.kill(Number(pid), 0);
      continue; // still running
    } catch {
      /* gone */
    }
    const dir = join(tmpdir(), entry);
    await sh('sh', ['-c', `for p in ${dir}/*/docker.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")"; done; true`]).catch(() => undefined);
    await sh('sh', ['-c', `pkill -9 -f "socat .*nbt${id}" ; true`]).catch(() => undefined);
    const netns = (await sh('ip', ['netns', 'list']).catch(() => ''))
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`nbt${id}h`));
    for (const ns of netns) await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    await sh('ip', ['link', 'del', `nbt${id}`]).catch(() => undefined);
    await sh('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/mounts | sort -r | xargs -r umount -l`]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
