import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { streams, subjects } from '@nebula/contracts';
import { freePort, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureStream, ensureStreams, streamConfig } from '../src/index.ts';

/**
 * NATS_STREAM_REPLICAS: the streams' owners keep each stream at that many copies. On a real
 * three-server JetStream cluster (plain, on loopback: permissions are not what this is about), three
 * copies, kept at three, and one server stopping loses nothing and stops nothing.
 */
interface Node {
  name: string;
  port: number;
  proc: ChildProcess;
  output: () => string;
}

const dir = mkdtempSync(join(tmpdir(), 'nebula-nats-cluster-'));
const nodes: Node[] = [];
const connections: NatsConnection[] = [];

async function startCluster(): Promise<Node[]> {
  const ports = await Promise.all([0, 1, 2].map(async () => ({ client: await freePort(), route: await freePort() })));
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`).join(', ');
  for (const [i, p] of ports.entries()) {
    const name = `n${i + 1}`;
    const conf = join(dir, `${name}.conf`);
    writeFileSync(
      conf,
      `server_name: ${name}\nlisten: 127.0.0.1:${p.client}\njetstream { store_dir: "${join(dir, name)}" }\ncluster { name: nebula-test, listen: 127.0.0.1:${p.route}, routes: [${routes}] }\n`,
    );
    let out = '';
    const proc = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    nodes.push({ name, port: p.client, proc, output: () => out });
  }
  return nodes;
}

async function stop(node: Node): Promise<void> {
  if (node.proc.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    node.proc.once('exit', () => resolve());
    node.proc.kill('SIGTERM');
    setTimeout(() => node.proc.kill('SIGKILL'), 5000).unref();
  });
}

test.after(async () => {
  for (const c of connections) await c.close().catch(() => undefined);
  for (const n of nodes) await stop(n);
  rmSync(dir, { recursive: true, force: true });
});

test('the stream config carries the replica count: 1 unless told', () => {
  assert.is(streamConfig('apps').num_replicas, 1);
  assert.is(streamConfig('results', { replicas: 3 }).num_replicas, 3);
});

test('on a three-server cluster: three copies of each stream, kept at three; one server stopped, APPS still takes revisions', async () => {
  const cluster = await startCluster();
  const servers = cluster.map((n) => `nats://127.0.0.1:${n.port}`);
  const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 100, waitOnFirstConnect: true, timeout: 20_000 });
  connections.push(nc);
  // JetStream answers once the servers have found each other and chosen a meta leader.
  const jsm = await waitFor('the JetStream cluster to form', () => jetstreamManager(nc, { timeout: 2000 }), 30_000, 200);
  await waitFor('the streams made with three copies', () => ensureStreams(jsm, ['apps', 'results', 'hosts'], { replicas: 3 }).then(() => true), 30_000, 200);
  for (const key of ['apps', 'results', 'hosts'] as const) {
    const info = await jsm.streams.info(streams[key].name);
    assert.is(info.config.num_replicas, 3, key);
    assert.is((info.cluster?.replicas ?? []).length, 2, `${key}: a leader and two replicas`);
  }
  // A consumer (as the API makes them for hosts) follows its stream's count.
  await jsm.consumers.add(streams.apps.name, { durable_name: 'h1-web', ack_policy: AckPolicy.Explicit, filter_subject: subjects.app('web') });
  assert.is((await jsm.consumers.info(streams.apps.name, 'h1-web')).cluster?.replicas?.length, 2, 'a consumer with three copies');
  // Edited by hand down to one copy: the owner brings it back at its next start.
  await jsm.streams.update(streams.results.name, { ...streamConfig('results'), num_replicas: 1 });
  assert.is((await jsm.streams.info(streams.results.name)).config.num_replicas, 1);
  assert.is((await ensureStream(jsm, 'results', { replicas: 3 })).config.num_replicas, 3);

  const js = jetstream(nc);
  await js.publish(subjects.app('web'), '{"before":true}');
  const leader = (await jsm.streams.info(streams.apps.name)).cluster?.leader;
  const down = cluster.find((n) => n.name === leader);
  assert.ok(down, `the leader ${leader} is one of ours`);
  await stop(down);
  // Another copy takes over: the revision stored before is there, a new one is taken.
  await waitFor(
    'APPS to take a revision with one server down',
    () => js.publish(subjects.app('web'), '{"after":true}', { timeout: 2000 }).then(() => true),
    30_000,
    200,
  );
  const info = await waitFor('a new APPS leader', async () => {
    const i = await jsm.streams.info(streams.apps.name);
    return i.cluster?.leader && i.cluster.leader !== leader ? i : undefined;
  });
  assert.ok(info.state.messages >= 2, `both revisions kept (found ${info.state.messages})`);
});

test.run();
