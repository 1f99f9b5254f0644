import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { SIGNATURE_HEADER, verifyMessage } from '@nebula/bus-auth';
import { streams } from '@nebula/contracts';
import { createNotifier, type Notifier } from '@nebula/notifier';
import { waitFor } from '@nebula/test-kit';
import { createWorker, FakeRuntime, LABELS, type Worker } from '@nebula/worker';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { FAST_WORKER, http, joinHost, silentLog, startEnv, streamMessages, type TestEnv, uniqueName } from './helpers.ts';

/**
 * The APPS stream lost while the system runs (real nats-server, PostgreSQL, API and notifier): the
 * API puts the latest revision of every live app back, a host rebuilt afterwards (a fresh worker:
 * real worker code, the in-memory runtime) adopts every one of them, and a host that was there all
 * along makes its consumers again and takes the next change.
 */
const test = suite('APPS stream lost');
let env: TestEnv;
let api: ApiServer;
let notifier: Notifier;
const conns: NatsConnection[] = [];
const workers: Worker[] = [];
let oldHost: Worker;
const STREAM_CHECK_MS = 300;

const [web, db, gone] = [uniqueName('web'), uniqueName('db'), uniqueName('gone')];
/** The latest revision of each live app, as PostgreSQL has it. */
const latest = { [web]: 1, [db]: 3 };

/** The notifier's connection. */
async function own(): Promise<NatsConnection> {
  const nc = await connect(env.nats.connectOptions('notifier'));
  conns.push(nc);
  return nc;
}

const hosts: Array<Awaited<ReturnType<typeof joinHost>>> = [];
/** A host joined through the API (its own key and credential; its consumers made by the API). */
async function joined(id: string, apps: string[]) {
  const h = await joinHost(api.url, env.nats, id, apps);
  hosts.push(h);
  return h.host;
}

/** The newest message of each app's subject in the stream (revision), null when it has none. */
async function newestInStream(app: string): Promise<number | null> {
  const msgs = await streamMessages(env.nc, app);
  return msgs.at(-1)?.revision ?? null;
}

async function drained(): Promise<boolean> {
  const r = await env.db.selectFrom('outbox').select(env.db.fn.countAll<string>().as('n')).where('published_at', 'is', null).executeTakeFirstOrThrow();
  return Number(r.n) === 0;
}

test.before(async () => {
  env = await startEnv();
  api = await env.startApi({ relay: { streamCheckMs: STREAM_CHECK_MS } });
  notifier = createNotifier({ db: env.db, nc: await own(), log: silentLog, options: { flushIntervalMs: 50 } });
  await notifier.start();

  assert.is((await http(api.url, 'POST', `/api/v2/apps/${web}`, { body: { docker_image: 'img:1', containers_per: { server: 2 } } })).status, 200);
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${db}`, { body: { docker_image: 'img:1' } })).status, 200);
  assert.is((await http(api.url, 'PATCH', `/api/v2/apps/${db}/update`, { body: { env_vars: { A: '1' } } })).status, 202);
  assert.is((await http(api.url, 'PATCH', `/api/v2/apps/${db}/update`, { body: { docker_image: 'img:2' } })).status, 202);
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${gone}`, { body: { docker_image: 'img:1' } })).status, 200);
  assert.is((await http(api.url, 'DELETE', `/api/v2/apps/${gone}`)).status, 200);
  await waitFor('everything published', async () => (await drained()) && (await newestInStream(db)) === 3 && (await newestInStream(gone)) === 2);

  // A host that was there all along.
  const rt = new FakeRuntime();
  rt.registry.set('img:1', 'sha256:img1');
  rt.registry.set('img:2', 'sha256:img2');
  oldHost = createWorker({
    hostId: 'old-1',
    apps: [web, db],
    ...(await joined('old-1', [web, db])),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log: silentLog,
    options: FAST_WORKER,
  });
  workers.push(oldHost);
  await oldHost.start();
  assert.equal(oldHost.applied(), { [web]: { incarnation: 1, revision: 1 }, [db]: { incarnation: 2, revision: 3 } });
});

test.after(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  for (const h of hosts) await h.close();
  await notifier?.stop();
  for (const c of conns) await c.close().catch(() => undefined);
  await env?.close();
});

test('APPS deleted: the latest revision of every live app is back, and a fresh worker adopts them', async () => {
  const jsm = await jetstreamManager(env.nc);
  await jsm.streams.delete(streams.apps.name);
  await waitFor(
    'the latest revisions back in APPS',
    async () => (await newestInStream(web)) === latest[web] && (await newestInStream(db)) === latest[db],
    15_000,
  );
  // Only the latest revision of each live app; a deleted app stays gone.
  assert.equal(
    (await streamMessages(env.nc, db)).map((m) => m.revision),
    [3],
  );
  assert.equal(await streamMessages(env.nc, gone), []);
  const info = await jsm.streams.info(streams.apps.name);
  assert.is(info.config.storage, 'file');
  assert.is(info.config.discard, 'new');
  assert.ok(api.relay.republished >= 2, `republished ${api.relay.republished}`);
  // The same rollout: hosts' results count for it.
  const back = (await streamMessages(env.nc, db))[0]!;
  const rollout = await env.db
    .selectFrom('app_revisions')
    .select('app_revisions.rollout_id')
    .innerJoin('apps', 'apps.incarnation', 'app_revisions.incarnation')
    .where('app_revisions.revision', '=', 3)
    .where('apps.name', '=', db)
    .executeTakeFirstOrThrow();
  assert.is(back.rollout_id, rollout.rollout_id);

  // A host rebuilt from scratch: nothing on its engine, no consumer of its own.
  const rt = new FakeRuntime();
  rt.registry.set('img:1', 'sha256:img1');
  rt.registry.set('img:2', 'sha256:img2');
  const w = createWorker({
    hostId: 'rebuilt-1',
    apps: [web, db, gone],
    ...(await joined('rebuilt-1', [web, db, gone])),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log: silentLog,
    options: FAST_WORKER,
  });
  workers.push(w);
  await w.start();
  assert.equal(w.applied(), { [web]: { incarnation: 1, revision: 1 }, [db]: { incarnation: 2, revision: 3 }, [gone]: null });
  const containers = (app: string) => [...rt.containers.values()].filter((c) => c.spec.labels[LABELS.app] === app).map((c) => c.spec.image);
  assert.equal(containers(web), ['img:1', 'img:1']);
  assert.equal(containers(db), ['img:2']);
  assert.equal(containers(gone), []);
  // The host that was there all along lost its consumers with the stream: it makes them again.
  await waitFor(
    'the old host consuming again',
    async () => {
      const names = [];
      for await (const c of jsm.consumers.list(streams.apps.name)) names.push(c.name);
      return names.filter((n) => n.includes('old-1')).length === 2;
    },
    15_000,
  );
});

test('APPS purged (same stream, emptied): the latest revisions are back despite the duplicate window', async () => {
  const jsm = await jetstreamManager(env.nc);
  await jsm.streams.purge(streams.apps.name);
  assert.is(await newestInStream(web), null);
  await waitFor(
    'the latest revisions back in APPS',
    async () => (await newestInStream(web)) === latest[web] && (await newestInStream(db)) === latest[db],
    15_000,
  );
  assert.equal(await streamMessages(env.nc, gone), []);
  // Nothing more is added while the stream holds them.
  const before = api.relay.republished;
  const count = async () => (await jsm.streams.info(streams.apps.name)).state.messages;
  const n = await count();
  const checks = api.relay.streamChecks;
  await waitFor('two more checks of the stream', () => api.relay.streamChecks >= checks + 2);
  assert.is(api.relay.republished, before);
  assert.is(await count(), n);
  // A change after the loss goes out as usual, after the republished revision.
  assert.is((await http(api.url, 'PATCH', `/api/v2/apps/${web}/update`, { body: { env_vars: { B: '2' } } })).status, 202);
  await waitFor('revision 2 published', async () => (await newestInStream(web)) === 2);
  assert.equal(
    (await streamMessages(env.nc, web)).map((m) => m.revision),
    [1, 2],
  );
  await waitFor('both hosts applied revision 2', () => workers.every((w) => w.applied()[web]?.revision === 2), 15_000);
});

test("a server answer landed on apps.<app> by a host's reply subject: the app's latest revision is published again", async () => {
  // A host may publish its heartbeat; naming apps.<web> as the reply makes the server store its
  // acknowledgement there, as the newest message of the app. No worker applies it (unsigned), but a
  // host joining or restarting would find no revision of web: the stream check puts it back.
  const host = hosts[0]!;
  const jsm = await jetstreamManager(env.nc);
  const signed = (m: { subject: string; data: Uint8Array; header?: { get(k: string): string } }) =>
    verifyMessage(host.identity.controlPlaneKey, m.subject, m.data, m.header?.get(SIGNATURE_HEADER));
  const newest = () => jsm.direct.getMessage(streams.apps.name, { last_by_subj: `apps.${web}` });
  const before = await newest();
  assert.ok(before && signed(before), 'the newest message of web is a signed revision');
  host.nc.publish('hosts.old-1', '{}', { reply: `apps.${web}` });
  await host.nc.flush();
  const back = await waitFor(
    'a signed revision newest again, after something else',
    async () => {
      const n = await newest();
      return n && n.seq > before.seq && signed(n) ? n : undefined;
    },
    15_000,
  );
  const between = [];
  for (let seq = before.seq + 1; seq < back.seq; seq++) {
    const m = await jsm.streams.getMessage(streams.apps.name, { seq }).catch(() => null);
    if (m?.subject === `apps.${web}`) between.push(m);
  }
  assert.ok(between.length >= 1 && between.every((m) => !signed(m)), 'the server answer landed on apps.<web> in between, unsigned');
  const revision = (m: { json<T>(): T }) => m.json<{ revision: number }>().revision;
  assert.is(revision(back), revision(before));
});

test.run();
