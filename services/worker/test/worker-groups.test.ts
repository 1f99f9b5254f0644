import { createUser } from '@nats-io/nkeys';
import { type CronRunReport, cronJobConfigSchema, type GroupCronJob, groupSubjects } from '@nebula/contracts';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCronScheduler } from '../src/cron/cron-scheduler.ts';
import { type PruneInput, pruneHostImages } from '../src/prune.ts';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, type Worker, type WorkerOptions } from '../src/worker.ts';
import { collectHostEvents, createGroupStreams, type GroupTestHost, groupMessage, publishGroup, startGroupHost } from './group-helpers.ts';
import { collectResults, createStreams, envelope, FAST_WORKER, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * A worker started with DEVICE_GROUP follows its group live: apps added to the group get runners
 * (after a renewal for the new app set and a reconnect so its rights apply), apps removed lose
 * theirs and their containers, no restart. Real nats-server with security on (the host's rights are
 * its JWT's), in-memory engine; the test plays the control plane's renewal (group-helpers.ts).
 */
let nats: TestNatsServer;
let bus: TestBus;
const workers: Worker[] = [];
const hosts: GroupTestHost[] = [];
const FAST: Partial<WorkerOptions> = { ...FAST_WORKER, reconnectTimeoutMs: 10_000 };

function runtime(): FakeRuntime {
  const rt = new FakeRuntime();
  for (const ref of ['img:1', 'img:2']) rt.registry.set(ref, `sha256:${ref.replace(':', '')}`);
  return rt;
}

interface Started {
  w: Worker;
  host: GroupTestHost;
  prunes: PruneInput[];
  cron: { group: string; jobs: readonly GroupCronJob[] }[];
}

async function startWorker(
  hostId: string,
  group: string,
  rt: FakeRuntime,
  o: { apps?: string[]; allowed?: string[]; host?: GroupTestHost; prunes?: PruneInput[] } = {},
): Promise<Started> {
  const apps = o.apps ?? [];
  const host =
    o.host ?? (await startGroupHost(nats, bus, hostId, group, { apps, ...(o.allowed ? { allowed: o.allowed } : {}), ackWaitMs: FAST_WORKER.ackWaitMs }));
  hosts.push(host);
  const prunes = o.prunes ?? [];
  const cron: Started['cron'] = [];
  const w = createWorker({
    hostId,
    apps,
    deviceGroup: group,
    ...host,
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log,
    options: FAST,
    parts: {
      // The real ones, watched: what the worker hands them.
      createCronScheduler: (deps) => {
        const real = createCronScheduler(deps);
        return {
          update: (g, jobs) => {
            cron.push({ group: g, jobs });
            real.update(g, jobs);
          },
          stop: () => real.stop(),
        };
      },
      pruneHostImages: async (r, input, opts) => {
        prunes.push(input);
        const out = await pruneHostImages(r, input, opts);
        return { ...out, bytes_freed: out.bytes_freed + 1234 };
      },
    },
  });
  workers.push(w);
  await w.start();
  return { w, host, prunes, cron };
}

/** The app's containers on the engine: `name state`, sorted. */
const containersOf = (rt: FakeRuntime, app: string) =>
  rt
    .all()
    .filter((c) => c.labels[LABELS.app] === app)
    .map((c) => `${c.name} ${c.state}`)
    .sort();

const resultFor = (events: ReturnType<typeof collectHostEvents>, seq: number) => () => events.results.find((r) => r.seq === seq);

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  await createStreams(bus.admin);
  await createGroupStreams(bus.admin);
});

test.after(async () => {
  for (const w of workers) await w.stop();
  // Before the server goes: a host connection left open would try to reconnect forever.
  for (const h of hosts) await h.close();
  await bus.close();
  await nats.cleanup();
});

test('a group not created yet is waited for; its first message starts its app; adding b and removing a is live, with the rights to b after a reconnect', async () => {
  const g = `g-${suffix()}`;
  const [a, b] = [`ga-${suffix()}`, `gb-${suffix()}`];
  const hostId = `gh-${suffix()}`;
  await publishApp(bus, envelope(a, 1, 'create', { docker_image: 'img:1' }));
  await publishApp(bus, envelope(b, 1, 'create', { docker_image: 'img:1' }));
  const rt = runtime();
  let publicKey = '';
  const events = collectHostEvents(bus.admin, hostId, () => publicKey);
  await events.subscribed;
  const { w, host } = await startWorker(hostId, g, rt);
  publicKey = host.publicKey;
  assert.is(w.state, 'running', 'no group yet: the worker runs and waits');
  assert.equal(w.served(), []);
  assert.is(w.group(), null);

  await publishGroup(bus, groupMessage(g, 1, [a]));
  const r1 = await waitFor('the group result of seq 1', resultFor(events, 1));
  assert.is(r1.status, 'applied', r1.error ?? '');
  assert.equal(r1.apps, [{ app: a, status: 'applied', error: null }]);
  assert.equal(containersOf(rt, a), [`${a}-1 running`]);
  assert.equal(host.provisions, [[a]], 'one renewal, for the new app set');

  await publishGroup(bus, groupMessage(g, 2, [b]));
  const r2 = await waitFor('the group result of seq 2', resultFor(events, 2));
  assert.is(r2.status, 'applied', r2.error ?? '');
  assert.equal(r2.apps, [{ app: b, status: 'applied', error: null }]);
  assert.equal(containersOf(rt, b), [`${b}-1 running`]);
  assert.equal(containersOf(rt, a), [], "a's containers are gone");
  assert.equal(w.served(), [b]);
  assert.is(w.state, 'running', 'the same worker, never restarted');
  assert.equal(host.provisions, [[a], [b]]);

  // b's consumer is pulled with the new JWT's rights: a new revision of b is applied and reported.
  const results = collectResults(bus.admin, b);
  await publishApp(bus, envelope(b, 2, 'update', { docker_image: 'img:2' }));
  const applied = await results.waitFor(2);
  assert.is(applied.status, 'applied', applied.error ?? '');
  assert.is(w.applied()[b]?.revision, 2);
  results.stop();

  await w.heartbeat();
  const hb = await waitFor('a heartbeat naming the group', () => events.heartbeats.find((h) => h.device_group === g && h.apps.some((x) => x.app === b)));
  assert.equal(
    hb.apps.map((x) => x.app),
    [b],
  );
  assert.equal(events.unverified, [], "every event is signed with the host's key");
  events.stop();
  await w.stop();
});

test('forged and unsigned group messages are not applied, and are counted; the next signed one is', async () => {
  const g = `g-${suffix()}`;
  const a = `fa-${suffix()}`;
  const hostId = `fh-${suffix()}`;
  await publishApp(bus, envelope(a, 1, 'create', { docker_image: 'img:1' }));
  const rt = runtime();
  let publicKey = '';
  const events = collectHostEvents(bus.admin, hostId, () => publicKey);
  await events.subscribed;
  const { w, host } = await startWorker(hostId, g, rt);
  publicKey = host.publicKey;
  await publishGroup(bus, groupMessage(g, 1, [a]), { key: null });
  await publishGroup(bus, groupMessage(g, 2, [a]), { key: createUser() });
  await waitFor('both rejected', () => w.rejectedGroupMessages().signature === 2);
  assert.equal(containersOf(rt, a), [], 'nothing of the forged group applied');
  assert.equal(host.provisions, [], 'no renewal for a forged app set');
  assert.equal(events.results, [], 'no result vouches for a forgery');
  await publishGroup(bus, groupMessage(g, 3, [a]));
  const r = await waitFor('the signed one', resultFor(events, 3));
  assert.is(r.status, 'applied');
  assert.equal(containersOf(rt, a), [`${a}-1 running`]);
  assert.equal(w.rejectedGroupMessages(), { signature: 2, newer_version: 0 });
  events.stop();
  await w.stop();
});

test("a deleted group: its apps go, APP_NAME's stay, whatever the group listed; its cron jobs are dropped", async () => {
  const g = `g-${suffix()}`;
  const [fixed, x] = [`df-${suffix()}`, `dx-${suffix()}`];
  const hostId = `dh-${suffix()}`;
  await publishApp(bus, envelope(fixed, 1, 'create', { docker_image: 'img:1' }));
  await publishApp(bus, envelope(x, 1, 'create', { docker_image: 'img:1' }));
  const job: GroupCronJob = { name: `job-${suffix()}`, cron_job_id: 1, config: cronJobConfigSchema.parse({ docker_image: 'img:1', schedule: '0 3 * * *' }) };
  const rt = runtime();
  const events = collectHostEvents(bus.admin, hostId, () => '');
  await events.subscribed;
  const { w, cron } = await startWorker(hostId, g, rt, { apps: [fixed] });
  await publishGroup(bus, groupMessage(g, 1, [fixed, x], { cron_jobs: [job] }));
  assert.is((await waitFor('seq 1', resultFor(events, 1))).status, 'applied');
  assert.equal(w.served(), [fixed, x].sort());
  assert.equal(cron.at(-1), { group: g, jobs: [job] });

  await publishGroup(bus, groupMessage(g, 2, [], { deleted: true }));
  const r = await waitFor('seq 2', resultFor(events, 2));
  assert.is(r.status, 'applied');
  assert.equal(r.apps, []);
  assert.equal(w.served(), [fixed], "APP_NAME's app stays");
  assert.equal(containersOf(rt, fixed), [`${fixed}-1 running`]);
  assert.equal(containersOf(rt, x), []);
  assert.equal(cron.at(-1), { group: g, jobs: [] });
  assert.is(w.group()?.deleted, true);

  // Created again (a new incarnation): followed again.
  await publishGroup(bus, groupMessage(g, 1, [x], { incarnation: 2 }));
  await waitFor('the new incarnation', () => events.results.find((res) => res.incarnation === 2));
  assert.equal(containersOf(rt, x), [`${x}-1 running`]);
  events.stop();
  await w.stop();
});

test('a group app the join token does not allow: the group change is reported failed for it, the others are served', async () => {
  const g = `g-${suffix()}`;
  const [a, b] = [`ra-${suffix()}`, `rb-${suffix()}`];
  const hostId = `rh-${suffix()}`;
  await publishApp(bus, envelope(a, 1, 'create', { docker_image: 'img:1' }));
  await publishApp(bus, envelope(b, 1, 'create', { docker_image: 'img:1' }));
  const rt = runtime();
  const events = collectHostEvents(bus.admin, hostId, () => '');
  await events.subscribed;
  const { w } = await startWorker(hostId, g, rt, { allowed: [a] });
  await publishGroup(bus, groupMessage(g, 1, [a]));
  assert.is((await waitFor('seq 1', resultFor(events, 1))).status, 'applied');
  await publishGroup(bus, groupMessage(g, 2, [a, b]));
  const r = await waitFor('seq 2', resultFor(events, 2));
  assert.is(r.status, 'failed');
  assert.match(r.error ?? '', new RegExp(`${b}: .*the join token does not allow the apps ${b}`));
  assert.equal(
    r.apps.map((x) => `${x.app} ${x.status}`),
    [`${a} applied`, `${b} failed`],
  );
  assert.equal(w.served(), [a]);
  assert.equal(containersOf(rt, b), []);
  events.stop();
  await w.stop();
});

test('prune_id grown while the worker runs: one prune and one report; a restart (prune_id unchanged, or grown while away) never prunes', async () => {
  const g = `g-${suffix()}`;
  const a = `pa-${suffix()}`;
  const hostId = `ph-${suffix()}`;
  await publishApp(bus, envelope(a, 1, 'create', { docker_image: 'img:1' }));
  const rt = runtime();
  let publicKey = '';
  const events = collectHostEvents(bus.admin, hostId, () => publicKey);
  await events.subscribed;
  await publishGroup(bus, groupMessage(g, 1, [a], { prune_id: 1 }));
  const prunes: PruneInput[] = [];
  const first = await startWorker(hostId, g, rt, { prunes });
  publicKey = first.host.publicKey;
  assert.equal(first.w.served(), [a], 'the group read before anything else: its app served at start');
  assert.is((await waitFor('seq 1 (read at start, then delivered)', resultFor(events, 1))).status, 'applied');
  assert.is(prunes.length, 0, 'the first message sets the prune_id: no prune');

  await publishGroup(bus, groupMessage(g, 2, [a], { prune_id: 2 }));
  await waitFor('seq 2', resultFor(events, 2));
  assert.is(prunes.length, 1, 'pruned once');
  assert.equal(prunes[0]?.apps.length, 1, "the served app's image history is kept out of the prune");
  const report = await waitFor('the prune report', () => events.prunes[0]);
  assert.equal({ ...report, at: '' }, { v: 1, host: hostId, device_group: g, prune_id: 2, bytes_freed: 1234, images_removed: [], error: null, at: '' });

  await publishGroup(bus, groupMessage(g, 3, [a], { prune_id: 2 }));
  await waitFor('seq 3', resultFor(events, 3));
  assert.is(prunes.length, 1, 'prune_id unchanged: no prune');
  await first.w.stop();

  // Away: a prune happened. The restarted worker takes the newest prune_id as seen.
  await publishGroup(bus, groupMessage(g, 4, [a], { prune_id: 3 }));
  const second = await startWorker(hostId, g, rt, { host: first.host, prunes });
  await waitFor('seq 4', resultFor(events, 4));
  await publishGroup(bus, groupMessage(g, 5, [a], { prune_id: 3 }));
  await waitFor('seq 5', resultFor(events, 5));
  assert.is(prunes.length, 1, 'a restart never prunes');
  assert.is(events.prunes.length, 1);
  assert.equal(events.unverified, []);
  assert.equal(containersOf(rt, a), [`${a}-1 running`], 'the app kept across the restart');
  events.stop();
  await second.w.stop();
});

test('with a DEVICE_GROUP and no APP_NAME, containers of ours are not called unserved before the group says so', async () => {
  const g = `g-${suffix()}`;
  const [old, a] = [`uo-${suffix()}`, `ua-${suffix()}`];
  const hostId = `uh-${suffix()}`;
  await publishApp(bus, envelope(old, 1, 'create', { docker_image: 'img:1' }));
  await publishApp(bus, envelope(a, 1, 'create', { docker_image: 'img:1' }));
  const rt = runtime();
  // A worker serving `old` left its containers on the engine.
  const before = await startGroupHost(nats, bus, hostId, g, { apps: [old] });
  const pre = createWorker({ hostId, apps: [old], ...before, runtime: rt, hostFacts: { cores: 2, memory_mb: 2048 }, log, options: FAST });
  await pre.start();
  await pre.stop();
  assert.equal(containersOf(rt, old), [`${old}-1 running`]);
  const events = collectHostEvents(bus.admin, hostId, () => '');
  await events.subscribed;
  const { w } = await startWorker(hostId, g, rt, { host: before });
  assert.is(w.state, 'running', 'not refused: the group has not spoken yet');
  assert.equal(containersOf(rt, old), [`${old}-1 running`], 'kept while the group is waited for');
  await publishGroup(bus, groupMessage(g, 1, [a]));
  await waitFor('seq 1', resultFor(events, 1));
  assert.equal(containersOf(rt, a), [`${a}-1 running`]);
  assert.equal(containersOf(rt, old), [], 'not in the group: removed once it spoke');
  events.stop();
  await w.stop();
});

test('cron run reports are signed and published on events.<host>.cron.<job>', async () => {
  const g = `g-${suffix()}`;
  const hostId = `ch-${suffix()}`;
  const rt = runtime();
  let report: ((r: CronRunReport) => Promise<void>) | null = null;
  const host = await startGroupHost(nats, bus, hostId, g);
  hosts.push(host);
  const w = createWorker({
    hostId,
    apps: [],
    deviceGroup: g,
    ...host,
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log,
    options: FAST,
    parts: {
      createCronScheduler: (deps) => {
        report = deps.report;
        return createCronScheduler(deps);
      },
    },
  });
  workers.push(w);
  await w.start();
  const events = collectHostEvents(bus.admin, hostId, () => host.publicKey);
  const got: string[] = [];
  const sub = bus.admin.subscribe(groupSubjects.cronRun(hostId, '*'));
  void (async () => {
    for await (const m of sub) got.push(m.subject);
  })();
  await bus.admin.flush();
  const now = new Date().toISOString();
  await (report as unknown as (r: CronRunReport) => Promise<void>)({
    v: 1,
    job: 'backup',
    cron_job_id: 1,
    host: hostId,
    device_group: g,
    container: 'backup-1',
    started_at: now,
    finished_at: now,
    exit_code: 0,
    timed_out: false,
    log_tail: 'ok',
    error: null,
    at: now,
  });
  await waitFor('the cron run report', () => got.length === 1);
  assert.equal(got, [groupSubjects.cronRun(hostId, 'backup')]);
  assert.equal(events.unverified, []);
  sub.unsubscribe();
  events.stop();
  await w.stop();
});

test.run();
