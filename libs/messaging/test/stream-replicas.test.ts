import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { busReconnectOptions } from '@nebula/bus-auth';
import { streams, subjects } from '@nebula/contracts';
import { startNatsCluster, type TestNatsCluster, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterSizeOf, ensureStream, ensureStreams, streamConfig } from '../src/index.ts';

/**
 * The streams' owners keep each stream at its number of copies. On a real three-server JetStream
 * cluster in operator mode (test-kit startNatsCluster, configs from clusterServerConfig): `auto`
 * reads three servers from the server's INFO and makes three copies, kept at three (also while a
 * server is down), and one server stopping loses nothing and stops nothing.
 */
let cluster: TestNatsCluster | undefined;
const connections: NatsConnection[] = [];

test.after(async () => {
  for (const c of connections) await c.close().catch(() => undefined);
  await cluster?.cleanup();
});

test('the stream config carries the replica count: 1 unless told', () => {
  assert.is(streamConfig('apps').num_replicas, 1);
  assert.is(streamConfig('results', { replicas: 3 }).num_replicas, 3);
});

test('on a three-server cluster: auto makes three copies of each stream, kept at three; one server stopped, APPS still takes revisions', async () => {
  cluster = await startNatsCluster(3);
  const nc = await connect(cluster.connectOptions('admin', { ...busReconnectOptions(), reconnectTimeWait: 100 }));
  connections.push(nc);
  await nc.flush();
  assert.is(clusterSizeOf(nc.info), 3, `the server advertises three (${JSON.stringify(nc.info?.connect_urls)})`);
  const jsm = await jetstreamManager(nc, { timeout: 5000 });
  const auto = { replicas: 'auto' as const, clusterSize: () => clusterSizeOf(nc.info) };
  await ensureStreams(jsm, ['apps', 'results', 'hosts'], auto);
  for (const key of ['apps', 'results', 'hosts'] as const) {
    const info = await jsm.streams.info(streams[key].name);
    assert.is(info.config.num_replicas, 3, key);
    assert.is((info.cluster?.replicas ?? []).length, 2, `${key}: a leader and two replicas`);
  }
  // A consumer (as the API makes them for hosts) follows its stream's count.
  await jsm.consumers.add(streams.apps.name, { durable_name: 'h1-web', ack_policy: AckPolicy.Explicit, filter_subject: subjects.app('web') });
  assert.is((await jsm.consumers.info(streams.apps.name, 'h1-web')).cluster?.replicas?.length, 2, 'a consumer with three copies');
  // Edited by hand down to one copy: the owner brings it back at its next start (auto and explicit).
  await jsm.streams.update(streams.results.name, { ...streamConfig('results'), num_replicas: 1 });
  assert.is((await jsm.streams.info(streams.results.name)).config.num_replicas, 1);
  assert.is((await ensureStream(jsm, 'results', auto)).config.num_replicas, 3);
  assert.is((await ensureStream(jsm, 'results', { replicas: 3 })).config.num_replicas, 3);

  const js = jetstream(nc);
  await js.publish(subjects.app('web'), '{"before":true}');
  const leader = (await jsm.streams.info(streams.apps.name)).cluster?.leader;
  assert.ok(leader, 'APPS has a leader');
  const down = cluster.node(leader);
  await down.kill();
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
  // Ensured again with a server down (two advertised): auto never lowers the count.
  await waitFor('the INFO without the dead server', () => clusterSizeOf(nc.info) === 2 || undefined, 30_000, 200).catch(() => undefined);
  // (Retried as the owners do: while the meta group elects a new leader, the JetStream API does not answer.)
  const again = await waitFor('APPS ensured with a server down', () => ensureStream(jsm, 'apps', auto), 30_000, 200);
  assert.is(again.config.num_replicas, 3);
  // Back: it catches up and the cluster is whole again.
  await down.start();
  await cluster.settled();
});

test.run();
