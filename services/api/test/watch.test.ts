import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createNebulaClient, type NebulaClient, type RolloutProgress, watchRollout } from '@nebula/client';
import { createNotifier, type Notifier } from '@nebula/notifier';
import { waitFor } from '@nebula/test-kit';
import { createWorker, FakeRuntime, type Worker } from '@nebula/worker';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, FAST_WORKER, joinHost, silentLog, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * Live progress end to end, in one process: the API, a notifier and four workers (real worker code,
 * the in-memory container runtime) on a real nats-server and PostgreSQL. `rollouts.watch` is followed
 * through the typed client (server-sent events) while the workers apply a revision.
 */
const test = suite('watch');
let env: TestEnv;
let api: ApiServer;
let nebula: NebulaClient;
let notifier: Notifier;
const conns: NatsConnection[] = [];
const workers: Worker[] = [];
const hosts: Array<{ close(): Promise<void> }> = [];
const app = uniqueName('web');
const hostIds = [0, 1, 2, 3].map((i) => `${app}-h${i}`);
const runtimes: FakeRuntime[] = [];

/** Holds pulls until released: lets a test see a rollout part-way without relying on timing. */
test.before(async () => {
  env = await startEnv();
  api = await env.startApi();
  nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  const nnc = await connect(env.nats.connectOptions('notifier'));
  conns.push(nnc);
  notifier = createNotifier({ db: env.db, nc: nnc, log: silentLog, options: { flushIntervalMs: 50 } });
  await notifier.start();
  for (const hostId of hostIds) {
    // Each worker joined through the API, with its own key and credential.
    const joined = await joinHost(api.url, env.nats, hostId, [app]);
    hosts.push(joined);
    const rt = new FakeRuntime();
    rt.registry.set('img:1', 'sha256:img1');
    // img:2 exists for every host but the last: its pull fails there (image not found).
    if (hostId !== hostIds[3]) rt.registry.set('img:2', 'sha256:img2');
    runtimes.push(rt);
    const w = createWorker({
      hostId,
      apps: [app],
      ...joined.host,
      runtime: rt,
      hostFacts: { cores: 2, memory_mb: 2048 },
      log: silentLog,
      options: FAST_WORKER,
    });
    workers.push(w);
    await w.start();
  }
  // Expected hosts are the online ones at creation: wait until the notifier has recorded them all.
  await waitFor('four hosts online', async () => (await nebula.hosts.list.query({ app, status: 'online' })).hosts.length === 4, 15_000, 100);
});

test.after(async () => {
  for (const rt of runtimes) rt.releasePulls();
  for (const w of workers) await w.stop().catch(() => undefined);
  for (const h of hosts) await h.close();
  await notifier?.stop();
  for (const c of conns) await c.close().catch(() => undefined);
  await env?.close();
});

test('rollouts.watch pushes progress while four workers apply a revision, and ends when complete', async () => {
  runtimes[2]!.holdPulls();
  const created = await nebula.apps.create.mutate({ name: app, docker_image: 'img:1', containers_per: { server: 2 } });
  const seen: RolloutProgress[] = [];
  const last = await watchRollout(nebula, created.rollout_id, (p) => {
    seen.push(p);
    // The held host cannot have reported: release it once some progress has been pushed.
    if (seen.length === 1) runtimes[2]!.releasePulls();
  });
  assert.ok(seen.length >= 2, `progress pushed more than once: ${seen.length}`);
  assert.is(seen[0]!.complete, false);
  assert.ok(seen[0]!.pending >= 1);
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i]!.applied >= seen[i - 1]!.applied, 'applied never goes back');
    assert.is.not(JSON.stringify(seen[i]), JSON.stringify(seen[i - 1]), 'only changes are pushed');
  }
  assert.equal([last.expected, last.applied, last.failed, last.pending, last.complete], [4, 4, 0, 0, true]);
  assert.equal(
    last.hosts.map((h) => [h.host, h.state]),
    hostIds.map((h) => [h, 'applied']),
  );
  assert.ok(last.apply_ms.p50 !== null);
  const got = await nebula.apps.get.query({ name: app });
  assert.is(got.rollout?.id, created.rollout_id);
  assert.is(got.rollout?.complete, true);
  // The next heartbeats tell what runs: revision 1, two containers, on every host.
  await waitFor(
    'heartbeats show revision 1',
    async () => (await nebula.hosts.list.query({ app })).hosts.every((h) => h.running[0]?.revision === 1 && h.running[0].containers.length === 2),
    10_000,
    100,
  );
});

test('a host that cannot apply: the watch ends complete with its failure and error', async () => {
  const updated = await nebula.apps.patch.mutate({ name: app, docker_image: 'img:2' });
  const failures: string[] = [];
  const last = await watchRollout(nebula, updated.rollout_id, (p) => {
    for (const f of p.failures) if (!failures.includes(f.host)) failures.push(f.host);
  });
  assert.equal([last.expected, last.applied, last.failed, last.complete], [4, 3, 1, true]);
  assert.equal(failures, [hostIds[3]]);
  assert.match(last.failures[0]!.error ?? '', /img:2/);
  const list = await nebula.rollouts.list.query({ name: app });
  assert.equal(
    list.rollouts.map((r) => [r.revision, r.failed]),
    [
      [2, 1],
      [1, 0],
    ],
  );
  assert.is(list.rollouts[1]!.superseded_by, updated.rollout_id);
});

test('a worker that stops: its host turns offline in hosts.list and is not expected by the next rollout', async () => {
  await workers[1]!.stop();
  await waitFor(
    'host offline',
    async () => (await nebula.hosts.list.query({ app, status: 'offline' })).hosts.map((h) => h.id).includes(hostIds[1]!),
    15_000,
    100,
  );
  const host = await nebula.hosts.get.query({ id: hostIds[1]! });
  assert.is(host.status, 'offline');
  assert.ok(Date.parse(host.offline_after) <= Date.now());
  const online = (await nebula.hosts.list.query({ app, status: 'online' })).hosts.map((h) => h.id);
  assert.equal(online, [hostIds[0], hostIds[2], hostIds[3]]);
  const rolled = await nebula.apps.patch.mutate({ name: app, docker_image: 'img:1' });
  const last = await watchRollout(nebula, rolled.rollout_id);
  assert.equal([last.expected, last.applied, last.complete], [3, 3, true]);
  assert.not.ok(last.hosts.some((h) => h.host === hostIds[1]));
});

test.run();
