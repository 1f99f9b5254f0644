import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { type ConnectionOptions, connect, type NatsConnection } from '@nats-io/transport-node';
import { busConnectOptions, type ClusterNode, type ControlPlaneKeys, clusterServerConfig, createBusSetup, hostInboxPrefix } from '@nebula/bus-auth';
import type { HostCreds } from './nats-server.ts';
import { freePort } from './ports.ts';
import { issueHostCreds, serviceCreds } from './test-creds.ts';
import { waitFor } from './wait.ts';

/**
 * N real nats-servers in one JetStream cluster, in operator mode with one set of keys (as
 * clusterServerConfig renders them for the local stack), each with its own ports and data:
 *
 *   startNatsCluster(3) ──▶ every server up, routes between all, a meta leader, and JetStream
 *                           ready for the NEBULA account on each server (a probe stream with N
 *                           copies made and deleted) ──▶ returned
 *   node.kill() / stop()  ──▶ SIGKILL / SIGTERM; node.start() on the same ports and data, then
 *                           waits until the server says its streams are current (/healthz)
 *
 * Why the checks: servers started together sometimes form a JetStream meta group of two, every
 * server healthy, the third outside it for minutes (a race of servers started at once, seen about
 * one start in four with nats-server 2.10.27), so a stream with three copies answers "no suitable
 * peers for placement"; a test that created such streams right away was flaky. A server missing from the
 * meta group is restarted (it is then added at once), and the cluster is returned once a stream
 * with N copies can be made.
 */
export interface TestNatsNode {
  name: string;
  url: string;
  port: number;
  monitorPort: number;
  running(): boolean;
  /** SIGKILL: the server dies without a word, as a crashed machine's would. */
  kill(): Promise<void>;
  /** SIGTERM (lame duck: clients are told to go elsewhere). */
  stop(): Promise<void>;
  /** Starts it again with the same ports and data; resolves once /healthz says its streams are current. */
  start(): Promise<void>;
  /** /healthz: JetStream on, every stream and consumer of the server current. */
  healthy(): Promise<boolean>;
}

export interface TestNatsCluster {
  nodes: TestNatsNode[];
  /** Every server's `nats://127.0.0.1:<port>`: the list a service takes as NATS_URL. */
  urls: string[];
  keys: ControlPlaneKeys;
  creds: { api: string; notifier: string; admin: string };
  /** Connection options with every server of the cluster (`servers` may be narrowed in `extra`). */
  connectOptions(who: 'api' | 'notifier' | 'admin' | HostCreds, extra?: ConnectionOptions): ConnectionOptions;
  hostCreds(hostId: string, apps: readonly string[], opts?: { expiresAt?: Date }): Promise<HostCreds>;
  /** The server whose name is `name` (a stream leader's, from stream info). */
  node(name: string): TestNatsNode;
  /** Waits until every running server reports healthy (streams current). */
  settled(timeoutMs?: number): Promise<void>;
  cleanup(): Promise<void>;
}

async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return r.ok;
  } catch {
    return false;
  }
}

/** The servers in the JetStream meta group, as its leader lists them (itself and its replicas); null without a leader. */
async function metaMembers(monitorPorts: readonly number[]): Promise<string[] | null> {
  for (const port of monitorPorts) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/jsz?leader-only=true`, { signal: AbortSignal.timeout(2000) });
      if (!r.ok) continue;
      const jsz = (await r.json()) as { meta_cluster?: { leader?: string; replicas?: Array<{ name: string }> } };
      const meta = jsz.meta_cluster;
      if (!meta?.leader) continue;
      return [meta.leader, ...(meta.replicas ?? []).map((x) => x.name)];
    } catch {
      // Not this one (not the leader, or not up): the next.
    }
  }
  return null;
}

/** `n` servers (3 unless told); `readyTimeoutMs` bounds the wait for JetStream to place n copies (default 60 s). */
export async function startNatsCluster(n = 3, opts: { readyTimeoutMs?: number } = {}): Promise<TestNatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-nats-cluster-'));
  const setup = await createBusSetup();
  const keys = setup.keys;
  const busConfig = setup.serverConfig(join(dir, 'accounts'));
  const ports = await freePorts(3 * n);
  const port = () => {
    const p = ports.shift();
    if (p === undefined) throw new Error('out of free ports');
    return p;
  };
  const layout: Array<ClusterNode & { monitorPort: number }> = Array.from({ length: n }, (_, i) => ({
    name: `n${i + 1}`,
    host: '127.0.0.1',
    clientPort: port(),
    clusterPort: port(),
    monitorPort: port(),
    storeDir: join(dir, `n${i + 1}`, 'jetstream'),
    resolverDir: join(dir, `n${i + 1}`, 'accounts'),
  }));
  const creds = await serviceCreds(keys);
  const urlOf = (l: ClusterNode) => `nats://127.0.0.1:${l.clientPort}`;
  const urls = layout.map(urlOf);

  const spawners: Array<() => Promise<void>> = [];
  const nodes: TestNatsNode[] = layout.map((l, i) => {
    mkdirSync(l.resolverDir, { recursive: true });
    const conf = join(dir, `${l.name}.conf`);
    writeFileSync(conf, clusterServerConfig({ busConfig, nodes: layout, index: i, clusterName: 'nebula-test' }));
    let proc: ChildProcess | null = null;
    let output = '';
    const running = () => proc !== null && proc.exitCode === null && proc.signalCode === null;
    const end = async (signal: NodeJS.Signals) => {
      const p = proc;
      if (!p || !running()) return;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill(signal);
        setTimeout(() => p.kill('SIGKILL'), 10_000).unref();
      });
    };
    const node: TestNatsNode = {
      name: l.name,
      url: urlOf(l),
      port: l.clientPort,
      monitorPort: l.monitorPort,
      running,
      kill: () => end('SIGKILL'),
      stop: () => end('SIGTERM'),
      healthy: () => httpOk(`http://127.0.0.1:${l.monitorPort}/healthz`),
      async start() {
        await spawnNode();
        await waitFor(`${l.name} healthy again`, () => node.healthy(), 60_000, 100);
      },
    };
    async function spawnNode(): Promise<void> {
      if (running()) return;
      output = '';
      const p = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
      p.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
      proc = p;
      await waitFor(
        `${l.name} listening`,
        () => {
          if (p.exitCode !== null) throw new Error(`nats-server ${l.name} exited (${p.exitCode}): ${output}`);
          return httpOk(`http://127.0.0.1:${l.monitorPort}/healthz?js-enabled-only=true`);
        },
        30_000,
        50,
      ).catch((err: unknown) => {
        throw new Error(`nats-server ${l.name} did not start: ${output.slice(-2000)}`, { cause: err });
      });
    }
    spawners.push(spawnNode);
    return node;
  });

  const connectOptions: TestNatsCluster['connectOptions'] = (who, extra = {}) => {
    const c = typeof who === 'string' ? creds[who] : who.creds;
    const inboxPrefix = typeof who === 'string' ? undefined : hostInboxPrefix(who.hostId);
    return {
      ...busConnectOptions({ servers: urls, creds: c, name: typeof who === 'string' ? who : who.hostId, ...(inboxPrefix ? { inboxPrefix } : {}) }),
      ...extra,
    };
  };
  const cluster: TestNatsCluster = {
    nodes,
    urls,
    keys,
    creds,
    connectOptions,
    hostCreds: (hostId, apps, o = {}) => issueHostCreds(keys, hostId, apps, o),
    node(name) {
      const found = nodes.find((x) => x.name === name);
      if (!found) throw new Error(`no server ${name} in the cluster (${nodes.map((x) => x.name).join(', ')})`);
      return found;
    },
    async settled(timeoutMs = 60_000) {
      await waitFor(
        'every running server healthy',
        async () => (await Promise.all(nodes.filter((x) => x.running()).map((x) => x.healthy()))).every(Boolean),
        timeoutMs,
        100,
      );
    },
    async cleanup() {
      for (const x of nodes) await x.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await Promise.all(spawners.map((spawnNode) => spawnNode()));
    await wholeMetaGroup(cluster, opts.readyTimeoutMs ?? 60_000);
    await untilReady(cluster, n, opts.readyTimeoutMs ?? 60_000);
  } catch (err) {
    await cluster.cleanup();
    throw err;
  }
  return cluster;
}

/** Waits for a meta leader with every server in its group; a server left out for 3 s is restarted. */
async function wholeMetaGroup(cluster: TestNatsCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ports = cluster.nodes.map((x) => x.monitorPort);
  let outSince = new Map<string, number>();
  for (;;) {
    const members = await metaMembers(ports);
    if (members && cluster.nodes.every((x) => members.includes(x.name))) return;
    if (Date.now() > deadline) throw new Error(`the JetStream meta group is not whole: ${members ? members.join(', ') : 'no leader'}`);
    if (members) {
      const now = Date.now();
      const out = cluster.nodes.filter((x) => !members.includes(x.name));
      outSince = new Map(out.map((x) => [x.name, outSince.get(x.name) ?? now]));
      for (const x of out) {
        if (now - (outSince.get(x.name) ?? now) < 3000) continue;
        if (process.env.TEST_LOG) process.stderr.write(`[nats-cluster] ${x.name} outside the meta group (${members.join(', ')}): restarted\n`);
        await x.stop();
        await x.start();
        outSince.delete(x.name);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Every server answers JetStream requests of the NEBULA account by itself (a client on each one
 * alone: the account is loaded there, a meta leader is known), then a stream with n copies can be
 * placed (made and deleted again), retried until the deadline.
 */
async function untilReady(cluster: TestNatsCluster, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  const conns: NatsConnection[] = [];
  try {
    for (const node of cluster.nodes) {
      const nc = await connect(cluster.connectOptions('admin', { servers: [node.url], noRandomize: true, ignoreClusterUpdates: true, timeout: 5000 }));
      conns.push(nc);
      await waitFor(`JetStream on ${node.name} for the account`, async () => (await jetstreamManager(nc, { timeout: 2000 })).getAccountInfo(), left(), 100);
    }
    const [first] = conns;
    if (!first) throw new Error('a cluster of no servers');
    const jsm = await jetstreamManager(first, { timeout: 5000 });
    const probe = `READY_PROBE_${Date.now().toString(36)}`;
    await waitFor(
      `a stream with ${n} copies placed`,
      async () => {
        try {
          await jsm.streams.add({ name: probe, subjects: [`nebula-ready-probe.${probe}`], num_replicas: n, storage: StorageType.Memory });
        } catch (err) {
          // Already made by an earlier try whose answer was lost: good enough.
          if (!/already in use/i.test(String(err))) throw err;
        }
        const info = await jsm.streams.info(probe);
        return (info.cluster?.replicas?.length ?? 0) === n - 1 && info.cluster?.leader !== undefined;
      },
      left(),
      200,
    );
    await jsm.streams.delete(probe);
  } finally {
    for (const c of conns) await c.close().catch(() => undefined);
  }
}
