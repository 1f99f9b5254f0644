/**
 * The NATS of the "ceiling" part: one server (test-kit's `startNatsServer`, with its monitoring port
 * on) or a cluster of servers joined by routes, each with JetStream, all in operator mode with the
 * same keys (the installation's, from `createBusSetup`), as users run it.
 *
 *   startBenchNats(1) ─▶ startNatsServer({ config: http }) ─▶ /varz answers
 *   startBenchNats(3) ─▶ 3 configs (server_name, cluster { routes }, resolver of its own)
 *                     ─▶ 3 processes ─▶ every /varz answers ─▶ JetStream has a meta leader
 *   stop()            ─▶ SIGTERM (SIGKILL after 5 s) ─▶ data removed
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { type ConnectionOptions, connect } from '@nats-io/transport-node';
import { apiPermissions, busConnectOptions, type ControlPlaneKeys, createBusSetup, issueUserCreds } from '@nebula/bus-auth';
import { freePort, startNatsServer, waitFor } from '@nebula/test-kit';
import { natsServerPid } from './proc-stats.ts';

export interface BenchNatsServer {
  name: string;
  url: string;
  monitorPort: number;
  pid: number;
  /** Null while it runs; else how it ended and its last output. */
  down(): string | null;
}

export interface BenchNats {
  servers: BenchNatsServer[];
  keys: ControlPlaneKeys;
  /** Connection options as the API (its own rights) or as an admin of the account, to server `at` first. */
  connectOptions(who: 'api' | 'admin', at?: number, extra?: ConnectionOptions): ConnectionOptions;
  stop(): Promise<void>;
}

export interface Varz {
  /** Resident memory, bytes. */
  mem: number;
  /** CPU, percent of one core (averaged by the server). */
  cpu: number;
  connections: number;
  subscriptions: number;
}

/** The server's /varz, with a deadline. */
export async function varz(s: BenchNatsServer, timeoutMs = 10_000): Promise<Varz> {
  const res = await fetch(`http://127.0.0.1:${s.monitorPort}/varz`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${s.name} /varz: ${res.status}`);
  const v = (await res.json()) as Partial<Varz>;
  return {
    mem: Number(v.mem ?? Number.NaN),
    cpu: Number(v.cpu ?? Number.NaN),
    connections: Number(v.connections ?? 0),
    subscriptions: Number(v.subscriptions ?? 0),
  };
}

async function serviceCreds(keys: ControlPlaneKeys) {
  return {
    api: (await issueUserCreds(keys, { name: 'api', permissions: apiPermissions() })).creds,
    admin: (await issueUserCreds(keys, { name: 'admin', permissions: { pub: { allow: ['>'] }, sub: { allow: ['>'] } } })).creds,
  };
}

async function single(): Promise<BenchNats> {
  const monitorPort = await freePort();
  const nats = await startNatsServer({ config: `http: "127.0.0.1:${monitorPort}"` });
  const pid = natsServerPid(nats.port);
  const creds = await serviceCreds(nats.keys);
  const server: BenchNatsServer = {
    name: 'n1',
    url: nats.url,
    monitorPort,
    pid,
    down: () => {
      try {
        process.kill(pid, 0);
        return null;
      } catch {
        return `nats-server ${nats.url} is gone`;
      }
    },
  };
  await waitFor('nats /varz', async () => (await varz(server, 1000).catch(() => null)) !== null, 30_000, 50);
  return {
    servers: [server],
    keys: nats.keys,
    connectOptions: (who, _at = 0, extra = {}) => ({ ...busConnectOptions({ servers: [nats.url], creds: creds[who], name: `bench-${who}` }), ...extra }),
    stop: () => nats.cleanup(),
  };
}

async function cluster(size: number): Promise<BenchNats> {
  const setup = await createBusSetup();
  const dir = mkdtempSync(join(tmpdir(), 'nebula-bench-cluster-'));
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort(), monitor: await freePort() })));
  const procs: Array<{ proc: ChildProcess; output: string }> = [];
  const stop = async () => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.proc.exitCode !== null || p.proc.signalCode !== null) return resolve();
            p.proc.once('exit', () => resolve());
            p.proc.kill('SIGTERM');
            setTimeout(() => p.proc.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  const servers: BenchNatsServer[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      const own = join(dir, name);
      mkdirSync(own, { recursive: true });
      const p = ports[i]!;
      const routes = ports.filter((_, j) => j !== i).map((q) => `nats-route://127.0.0.1:${q.route}`);
      const conf = [
        `server_name: ${name}`,
        `http: "127.0.0.1:${p.monitor}"`,
        `jetstream { store_dir: ${JSON.stringify(join(own, 'js'))} }`,
        `cluster { name: nebula-bench, listen: "127.0.0.1:${p.route}", routes: [${routes.map((r) => JSON.stringify(r)).join(', ')}] }`,
        setup.serverConfig(join(own, 'accounts')),
      ].join('\n');
      writeFileSync(join(own, 'nats.conf'), conf);
      const proc = spawn('nats-server', ['-c', join(own, 'nats.conf'), '-a', '127.0.0.1', '-p', String(p.client)], { stdio: ['ignore', 'pipe', 'pipe'] });
      const entry = { proc, output: '' };
      const keep = (d: Buffer) => {
        entry.output = (entry.output + d.toString()).slice(-4000);
      };
      proc.stdout?.on('data', keep);
      proc.stderr?.on('data', keep);
      procs.push(entry);
      servers.push({
        name,
        url: `nats://127.0.0.1:${p.client}`,
        monitorPort: p.monitor,
        pid: proc.pid!,
        down: () =>
          proc.exitCode !== null || proc.signalCode !== null ? `${name} exited (${proc.exitCode ?? proc.signalCode}): ${entry.output.slice(-500)}` : null,
      });
    }
    for (const s of servers) {
      await waitFor(
        `${s.name} /varz`,
        async () => {
          const gone = s.down();
          if (gone) throw new Error(gone);
          return (await varz(s, 1000).catch(() => null)) !== null;
        },
        30_000,
        50,
      );
    }
    const creds = await serviceCreds(setup.keys);
    const urls = servers.map((s) => s.url);
    const connectOptions = (who: 'api' | 'admin', at = 0, extra: ConnectionOptions = {}): ConnectionOptions => ({
      // The given server first; the others to fail over to (no shuffling, so that connections spread as asked).
      ...busConnectOptions({ servers: [...urls.slice(at % size), ...urls.slice(0, at % size)], creds: creds[who], name: `bench-${who}-${at}` }),
      noRandomize: true,
      ...extra,
    });
    // JetStream answers once the servers have elected a meta leader.
    const nc = await connect(connectOptions('admin'));
    try {
      await waitFor(
        'JetStream meta leader',
        async () => {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          return (await jsm.getAccountInfo().catch(() => null)) !== null;
        },
        60_000,
        250,
      );
    } finally {
      await nc.close();
    }
    return { servers, keys: setup.keys, connectOptions, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One server (`size` 1) or a cluster of `size` servers. */
export function startBenchNats(size: number): Promise<BenchNats> {
  return size === 1 ? single() : cluster(size);
}
