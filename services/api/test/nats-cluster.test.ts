import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { type ConnectionOptions, connect, type NatsConnection } from '@nats-io/transport-node';
import { busReconnectOptions } from '@nebula/bus-auth';
import type { NebulaClient, RolloutProgress } from '@nebula/client';
import { streams } from '@nebula/contracts';
import type { Database, Kysely } from '@nebula/db';
import type { Notifier } from '@nebula/notifier';
import { createLogger } from '@nebula/service-kit';
import { startNatsCluster, type TestNatsCluster, type TestNatsNode, waitFor } from '@nebula/test-kit';
import { createWorker, FakeRuntime, joinBus, LABELS, type Worker } from '@nebula/worker';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { type InProcessControlPlane, startControlPlane } from './control-plane.ts';
import { FAST_WORKER, http, silentLog, uniqueName } from './helpers.ts';

/**
 * The bus without a single point of failure: a three-server NATS cluster (operator mode, one set of
 * keys: test-kit startNatsCluster), the API, the notifier and six hosts (real worker code, the
 * in-memory container runtime), every one given the three URLs and reconnecting across them
 * (busReconnectOptions). The streams are made with three copies (NATS_STREAM_REPLICAS auto).
 *
 *   rollout ──▶ the APPS leader killed ──▶ another revision while it is down ──▶ every host converges
 *           ──▶ it comes back (current again) ──▶ another server killed (the notifier's) ──▶ another
 *               revision ──▶ every host converges ──▶ it comes back
 *
 * Then: every rollout has a result from every host (none lost), the last one applied everywhere,
 * the outbox relay published everything, the notifier still consumes (results and heartbeats).
 */
const test = suite('nats cluster');
const HOSTS = 6;
const app = uniqueName('web');
const hostIds = Array.from({ length: HOSTS }, (_, i) => `${app}-h${i}`);
/** The services' reconnect options with shorter waits, as a test affords. */
const RECONNECT: Partial<ConnectionOptions> = { ...busReconnectOptions(), reconnectTimeWait: 200, reconnectJitter: 100, pingInterval: 2_000 };

let cluster: TestNatsCluster;
let cp: InProcessControlPlane;
let db: Kysely<Database>;
let api: ApiServer;
let apiNc: NatsConnection;
let notifierNc: NatsConnection;
let admin: NatsConnection;
let notifier: Notifier;
let nebula: NebulaClient;
const conns: NatsConnection[] = [];
const workers: Worker[] = [];
const runtimes: FakeRuntime[] = [];
const hosts: Array<{ close(): Promise<void> }> = [];
const dirs: string[] = [];
const figures: string[] = [];

const connectAs = async (who: 'api' | 'notifier' | 'admin') => {
  const nc = await connect(cluster.connectOptions(who, { ...RECONNECT, waitOnFirstConnect: true, name: `test-${who}` }));
  conns.push(nc);
  return nc;
};

test.before(async () => {
  cluster = await startNatsCluster(3);
  admin = await connectAs('admin');
  apiNc = await connectAs('api');
  notifierNc = await connectAs('notifier');
  cp = await startControlPlane({ apiNc, notifierNc, keys: cluster.keys, hosts: { servers: cluster.urls, revocationRetryMs: 200 } });
  ({ db, api, notifier, nebula } = cp);
  for (const hostId of hostIds) {
    const token = await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: { uses: 1, apps: [app] } });
    assert.is(token.status, 200, token.text);
    const dir = mkdtempSync(join(tmpdir(), 'nebula-cluster-host-'));
    dirs.push(dir);
    // Joined through the API with the three servers, as a join command names them.
    const bus = await joinBus({
      hostId,
      apps: [app],
      credentialsFile: join(dir, 'credentials.json'),
      nebulaUrl: api.url,
      joinToken: (token.body as { token: string }).token,
      consumer: { ack_wait_seconds: 5 },
      timeoutMs: 5000,
      log: createLogger('test-host', 'silent'),
      servers: cluster.urls,
      connect: RECONNECT,
    });
    hosts.push(bus);
    const rt = new FakeRuntime();
    for (let i = 1; i <= 5; i++) rt.registry.set(`img:${i}`, `sha256:img${i}`);
    runtimes.push(rt);
    const w = createWorker({ hostId, apps: [app], ...bus.host, runtime: rt, hostFacts: { cores: 2, memory_mb: 2048 }, log: silentLog, options: FAST_WORKER });
    workers.push(w);
    await w.start();
  }
  await waitFor(`${HOSTS} hosts online`, async () => (await nebula.hosts.list.query({ app, status: 'online' })).hosts.length === HOSTS, 30_000, 100);
});

test.after(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  for (const h of hosts) await h.close().catch(() => undefined);
  await cp?.close();
  for (const c of conns) await c.close().catch(() => undefined);
  await cluster?.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (figures.length > 0) process.stdout.write(`\n[figures] ${figures.join('; ')}\n`);
});

async function rollout(id: string): Promise<RolloutProgress> {
  return nebula.rollouts.get.query({ id });
}

/** Waits until every host reported the rollout and all of them applied it. */
async function appliedEverywhere(id: string, what: string): Promise<RolloutProgress> {
  return waitFor(
    what,
    async () => {
      const p = await rollout(id);
      return p.applied === HOSTS && p.pending === 0 ? p : undefined;
    },
    90_000,
    100,
  );
}

const serverOf = (nc: NatsConnection) => nc.info?.server_name ?? '?';

async function leaderOf(stream: string): Promise<string> {
  const jsm = await jetstreamManager(admin, { timeout: 5000 });
  return waitFor(`a leader of ${stream}`, async () => (await jsm.streams.info(stream)).cluster?.leader, 30_000, 100);
}

/** What a server is to the system right now: which leaders and whose connection it holds. */
async function roles(node: TestNatsNode): Promise<string> {
  const r: string[] = [];
  for (const s of [streams.apps.name, streams.results.name, streams.hosts.name]) if ((await leaderOf(s)) === node.name) r.push(`${s} leader`);
  if (serverOf(apiNc) === node.name) r.push('the API');
  if (serverOf(notifierNc) === node.name) r.push('the notifier');
  return r.join(', ') || 'no leader, no service';
}

test('auto: every stream made with three copies on the three-server cluster', async () => {
  const jsm = await jetstreamManager(admin, { timeout: 5000 });
  for (const key of ['apps', 'groups', 'results', 'hosts', 'events'] as const) {
    const info = await jsm.streams.info(streams[key].name);
    assert.is(info.config.num_replicas, 3, key);
    assert.is(info.cluster?.replicas?.length, 2, `${key}: a leader and two copies`);
  }
});

test('a server killed in the middle of a rollout, then another while the first is back: every host converges, no result lost', async () => {
  const created = await nebula.apps.create.mutate({ name: app, docker_image: 'img:1', containers_per: { server: 2 } });
  await appliedEverywhere(created.rollout_id, 'revision 1 applied everywhere');
  const ids = [created.rollout_id];

  // 1. The APPS leader killed right after a change is taken, and another change while it is down.
  const first = cluster.node(await leaderOf(streams.apps.name));
  const r2 = await nebula.apps.patch.mutate({ name: app, docker_image: 'img:2' });
  ids.push(r2.rollout_id);
  const firstRoles = await roles(first);
  const killedAt = Date.now();
  await first.kill();
  const r3 = await nebula.apps.patch.mutate({ name: app, docker_image: 'img:3' });
  ids.push(r3.rollout_id);
  await appliedEverywhere(r3.rollout_id, 'revision 3 applied everywhere with one server down');
  figures.push(`${first.name} (${firstRoles}) killed: revision 3 applied on ${HOSTS} hosts ${Date.now() - killedAt} ms later`);

  // 2. Back (current again), then another server killed: the notifier's, else any other.
  const back = Date.now();
  await first.start();
  await cluster.settled();
  figures.push(`${first.name} back and current in ${Date.now() - back} ms`);
  const others = cluster.nodes.filter((n) => n !== first);
  const second = others.find((n) => n.name === serverOf(notifierNc)) ?? others[0]!;
  const secondRoles = await roles(second);
  const r4 = await nebula.apps.patch.mutate({ name: app, docker_image: 'img:4' });
  ids.push(r4.rollout_id);
  const killed2At = Date.now();
  await second.kill();
  const r5 = await nebula.apps.patch.mutate({ name: app, env_vars: { AFTER: 'two kills' } });
  ids.push(r5.rollout_id);
  const last = await appliedEverywhere(r5.rollout_id, 'revision 5 applied everywhere with another server down');
  figures.push(`${second.name} (${secondRoles}) killed: revision 5 applied on ${HOSTS} hosts ${Date.now() - killed2At} ms later`);
  await second.start();
  await cluster.settled();

  // No result lost: every rollout has a result from every host (applied, or superseded by the
  // newer revision it found waiting), none failed; the last one applied everywhere.
  for (const id of ids) {
    const p = await waitFor(
      `every host's result for rollout ${id}`,
      async () => {
        const q = await rollout(id);
        return q.reported === HOSTS ? q : undefined;
      },
      30_000,
      100,
    );
    assert.is(p.failed, 0, `rollout of revision ${p.revision}: none failed`);
    assert.is(p.applied + p.superseded, HOSTS, `rollout of revision ${p.revision}: applied or superseded on every host`);
  }
  assert.is(last.succeeded, true);
  assert.equal(
    last.hosts.map((h) => [h.host, h.state]),
    hostIds.map((h) => [h, 'applied']),
  );
  for (const [i, w] of workers.entries()) {
    assert.equal(w.applied()[app]?.revision, 5, `${hostIds[i]} applied revision 5`);
    const running = [...runtimes[i]!.containers.values()].filter((c) => c.spec.labels[LABELS.app] === app);
    assert.equal(
      running.map((c) => [c.spec.image, c.spec.env.AFTER]),
      [
        ['img:4', 'two kills'],
        ['img:4', 'two kills'],
      ],
    );
  }
  // The relay went on: nothing left unpublished.
  const unpublished = await db.selectFrom('outbox').select(db.fn.countAll<string>().as('n')).where('published_at', 'is', null).executeTakeFirstOrThrow();
  assert.is(Number(unpublished.n), 0, 'the outbox drained');
  // The notifier goes on: running, and the heartbeats after both kills show revision 5 everywhere.
  assert.is(notifier.state, 'running');
  await waitFor(
    'heartbeats show revision 5 on every host',
    async () => {
      const list = (await nebula.hosts.list.query({ app })).hosts;
      return list.length === HOSTS && list.every((h) => h.status === 'online' && h.running[0]?.revision === 5);
    },
    30_000,
    100,
  );
});

test.run();
