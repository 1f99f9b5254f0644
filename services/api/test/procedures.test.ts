import { isNewer } from '@nebula/contracts';
import { waitFor } from '@nebula/test-kit';
import { TRPCError } from '@trpc/server';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN_PERMISSIONS } from '../src/access/permissions.ts';
import { appRouter, type Context } from '../src/index.ts';
import { silentLog, startEnv, streamMessages, type TestEnv, uniqueName } from './helpers.ts';

/** Every procedure through createCaller, against a real PostgreSQL (and NATS for the relay). */
const test = suite('procedures');
let env: TestEnv;

function caller(identity: Context['identity'] = { name: 'alice', method: 'basic', kind: 'local-admin', permissions: ADMIN_PERMISSIONS }) {
  return appRouter.createCaller({ db: env.db, log: silentLog, identity, settings: { offlineAfterMissedHeartbeats: 3 } });
}

async function rejects(p: Promise<unknown>, code: string, body?: Record<string, unknown>): Promise<TRPCError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, TRPCError);
    const e = err as TRPCError;
    assert.is(e.code, code, e.message);
    if (body) assert.equal((e.cause as { body?: unknown }).body, body);
    return e;
  }
  throw new assert.Assertion({ message: `expected ${code}`, generated: true, operator: 'rejects', expects: code, actual: 'resolved' });
}

async function counts() {
  const [apps, revisions, outbox, rollouts] = await Promise.all(
    (['apps', 'app_revisions', 'outbox', 'rollouts'] as const).map((t) =>
      env.db.selectFrom(t).select(env.db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow(),
    ),
  );
  return { apps: apps!.n, revisions: revisions!.n, outbox: outbox!.n, rollouts: rollouts!.n };
}

test.before(async () => {
  env = await startEnv();
  await env.startApi();
});
test.after(async () => env.close());

test('status, create, get, list: the stored app with defaults, app_id 1', async () => {
  const c = caller();
  assert.equal(await c.status.get(), { api_available: true });
  const name = uniqueName();
  const doc = await c.apps.create({ name, docker_image: 'nginx:1.27', starting_ports: [8080, { '81': '80' }] });
  assert.is(doc.app_name, name);
  assert.is(doc.app_id, 1);
  assert.ok(doc.incarnation > 0);
  assert.match(doc.rollout_id, /^[0-9a-f-]{36}$/);
  assert.equal(doc.containers_per, { server: 1 });
  assert.equal(doc.env_vars, {});
  assert.equal(doc.networks, ['nebula', 'bridge']);
  assert.is(doc.running, true);
  const { rollout, publish_errors, ...got } = await c.apps.get({ name });
  assert.equal(got, doc);
  assert.equal(publish_errors, []);
  assert.equal([rollout?.id, rollout?.action, rollout?.expected, rollout?.complete], [doc.rollout_id, 'create', 0, true]);
  assert.ok((await c.apps.list()).apps.includes(name));
});

test('create of an existing name is FORBIDDEN {app_exists: true}; nothing stored', async () => {
  const c = caller();
  const name = uniqueName();
  await c.apps.create({ name, docker_image: 'nginx' });
  const before = await counts();
  await rejects(c.apps.create({ name, docker_image: 'redis' }), 'FORBIDDEN', { app_exists: true });
  assert.equal(await counts(), before);
  assert.is((await c.apps.get({ name })).docker_image, 'nginx');
});

test('unknown app: FORBIDDEN {app_exists: false} for every procedure that takes a name', async () => {
  const c = caller();
  const name = uniqueName('missing');
  const calls: Array<() => Promise<unknown>> = [
    () => c.apps.get({ name }),
    () => c.apps.delete({ name }),
    () => c.apps.stop({ name }),
    () => c.apps.start({ name }),
    () => c.apps.restart({ name }),
    () => c.apps.roll({ name }),
    () => c.apps.pull({ name }),
    () => c.apps.update({ name, docker_image: 'nginx' }),
    () => c.apps.patch({ name, running: false }),
    () => c.apps.rollback({ name, revision: 1 }),
    () => c.apps.history({ name }),
  ];
  for (const call of calls) await rejects(call(), 'FORBIDDEN', { app_exists: false });
});

test('stop, start, restart, roll, pull: each a new revision; restart/roll of a stopped app refused', async () => {
  const c = caller();
  const name = uniqueName();
  await c.apps.create({ name, docker_image: 'nginx' });
  const stopped = await c.apps.stop({ name });
  assert.is(stopped.running, false);
  assert.is(stopped.app_id, 2);
  const before = await counts();
  await rejects(c.apps.restart({ name }), 'FORBIDDEN', { running_before_restart: false });
  await rejects(c.apps.roll({ name }), 'FORBIDDEN', { running_before_restart: false });
  assert.equal(await counts(), before);
  const started = await c.apps.start({ name });
  assert.is(started.running, true);
  assert.is(started.app_id, 3);
  assert.is((await c.apps.restart({ name })).app_id, 4);
  assert.is((await c.apps.roll({ name })).app_id, 5);
  const pulled = await c.apps.pull({ name });
  assert.is(pulled.app_id, 6);
  assert.is.not(pulled.rollout_id, started.rollout_id);
});

test('update (POST) replaces the whole config: omitted fields reset, env_vars defaults to []', async () => {
  const c = caller();
  const name = uniqueName();
  await c.apps.create({ name, docker_image: 'nginx', env_vars: { A: '1' }, privileged: true, starting_ports: [80] });
  const doc = await c.apps.update({ name, docker_image: 'nginx:2' });
  assert.is(doc.docker_image, 'nginx:2');
  assert.equal(doc.env_vars, []);
  assert.is(doc.privileged, false);
  assert.equal(doc.starting_ports, []);
  assert.is(doc.app_id, 2);
});

test('patch (PUT/PATCH) merges and validates the result as a whole', async () => {
  const c = caller();
  const name = uniqueName();
  await c.apps.create({ name, docker_image: 'nginx', starting_ports: [8080], env_vars: { A: 1 } });
  const doc = await c.apps.patch({ name, privileged: true, command: ['nginx', '-g', 'daemon off;'] });
  assert.is(doc.privileged, true);
  assert.equal(doc.env_vars, { A: '1' });
  assert.equal(doc.starting_ports, [8080]);
  assert.equal(doc.command, ['nginx', '-g', 'daemon off;']);
  const before = await counts();
  // {"8080": "80"} is fine alone, but collides with the existing 8080 only once merged.
  const e = await rejects(c.apps.patch({ name, containers_per: { server: 2 }, starting_ports: [8080, 8081] }), 'BAD_REQUEST');
  assert.ok(JSON.stringify(e.cause).includes('starting_ports'));
  await rejects(c.apps.patch({ name }), 'BAD_REQUEST');
  assert.equal(await counts(), before);
});

test('invalid input is BAD_REQUEST naming each field; nothing stored', async () => {
  const c = caller();
  const before = await counts();
  const bad: Array<Record<string, unknown>> = [
    { name: 'a.b', docker_image: 'nginx' },
    { name: 'a b', docker_image: 'nginx' },
    { name: 'a*', docker_image: 'nginx' },
    { name: 'a>', docker_image: 'nginx' },
    { name: 'a/b', docker_image: 'nginx' },
    { name: 'ünï', docker_image: 'nginx' },
    { name: uniqueName() },
    { name: uniqueName(), docker_image: 'Not A Valid Image' },
    { name: uniqueName(), docker_image: 'nginx', starting_ports: [0] },
    { name: uniqueName(), docker_image: 'nginx', starting_ports: [70000] },
    { name: uniqueName(), docker_image: 'nginx', starting_ports: [80, { '80': '81' }] },
    { name: uniqueName(), docker_image: 'nginx', bogus: true },
    { name: uniqueName(), docker_image: 'nginx', running: 'yes' },
    { name: uniqueName(), docker_image: 'nginx', volumes: ['relative:path'] },
    { name: uniqueName(), docker_image: 'nginx', env_vars: { 'BAD NAME': 'x' } },
    { name: uniqueName(), docker_image: 'nginx', containers_per: { server: 1, cpu: 2 } },
  ];
  for (const input of bad) await rejects(c.apps.create(input as never), 'BAD_REQUEST');
  assert.equal(await counts(), before);
});

test('rollback to revision N: a new revision with N config; unknown N refused', async () => {
  const c = caller();
  const name = uniqueName();
  await c.apps.create({ name, docker_image: 'nginx:1', env_vars: { V: '1' } });
  await c.apps.patch({ name, docker_image: 'nginx:2', env_vars: { V: '2' } });
  const rolled = await c.apps.rollback({ name, revision: 1 });
  assert.is(rolled.app_id, 3);
  assert.is(rolled.docker_image, 'nginx:1');
  assert.equal(rolled.env_vars, { V: '1' });
  await rejects(c.apps.rollback({ name, revision: 99 }), 'FORBIDDEN', { revision_exists: false });
  assert.is((await c.apps.get({ name })).app_id, 3);
});

test('history: newest first, with actor, time, action and the diff against the previous revision', async () => {
  const name = uniqueName();
  await caller({ name: 'alice', method: 'basic', kind: 'local-admin', permissions: ADMIN_PERMISSIONS }).apps.create({ name, docker_image: 'nginx:1' });
  await caller({ name: 'token', method: 'bearer', kind: 'local-admin', permissions: ADMIN_PERMISSIONS }).apps.patch({ name, docker_image: 'nginx:2' });
  await caller().apps.stop({ name });
  const h = await caller().apps.history({ name });
  assert.equal(
    h.revisions.map((r) => [r.app_id, r.action, r.actor]),
    [
      [3, 'stop', 'alice'],
      [2, 'update', 'token'],
      [1, 'create', 'alice'],
    ],
  );
  assert.equal(h.revisions[0]!.changes, [{ field: 'running', from: true, to: false }]);
  assert.equal(h.revisions[1]!.changes, [{ field: 'docker_image', from: 'nginx:1', to: 'nginx:2' }]);
  assert.ok(h.revisions[2]!.changes.some((ch) => ch.field === 'docker_image' && ch.to === 'nginx:1' && !('from' in ch)));
  assert.ok(!Number.isNaN(Date.parse(h.revisions[0]!.created_at)));
  const limited = await caller().apps.history({ name, limit: 1 });
  assert.is(limited.revisions.length, 1);
  assert.equal(limited.revisions[0]!.changes, h.revisions[0]!.changes);
});

test('rollouts: expected hosts are the online hosts serving the app; get shows progress', async () => {
  const name = uniqueName();
  const now = new Date();
  const old = new Date(Date.now() - 3600_000);
  const host = (id: string, apps: string[], last: Date) => ({
    id,
    apps,
    running: '[]',
    cores: 2,
    memory_mb: 1024,
    worker_version: 't',
    heartbeat_interval_seconds: 10,
    last_seen: last,
  });
  await env.db
    .insertInto('hosts')
    .values([host(`h-on-${name}`, [name, 'other'], now), host(`h-off-${name}`, [name], old), host(`h-else-${name}`, ['other'], now)])
    .execute();
  const doc = await caller().apps.create({ name, docker_image: 'nginx' });
  const r = await caller().rollouts.get({ id: doc.rollout_id });
  assert.is(r.id, doc.rollout_id);
  assert.equal([r.app, r.revision, r.action, r.expected, r.pending, r.complete], [name, 1, 'create', 1, 1, false]);
  assert.equal(
    r.hosts.map((h) => [h.host, h.state]),
    [[`h-on-${name}`, 'pending']],
  );
  assert.is((await caller().apps.get({ name })).rollout?.pending, 1, 'apps.get carries the latest rollout');
  await env.db
    .insertInto('rollout_hosts')
    .values({ rollout_id: doc.rollout_id, host: `h-on-${name}`, status: 'applied', containers: '[]', pull_ms: 0, apply_ms: 7, reported_at: new Date() })
    .execute();
  const after = await caller().rollouts.get({ id: doc.rollout_id });
  assert.equal([after.applied, after.pending, after.complete, after.apply_ms.p50], [1, 0, true, 7]);
  assert.is(after.hosts[0]!.state, 'applied');
  await waitFor('rollout published', async () => (await caller().rollouts.get({ id: doc.rollout_id })).published_at !== null);
  await rejects(caller().rollouts.get({ id: '00000000-0000-4000-8000-000000000000' }), 'FORBIDDEN', { rollout_exists: false });
  await rejects(caller().rollouts.get({ id: 'not-a-uuid' }), 'BAD_REQUEST');
});

test('rollouts.list: newest first, paged with before; unknown app is FORBIDDEN', async () => {
  const c = caller();
  const name = uniqueName();
  const ids = [(await c.apps.create({ name, docker_image: 'nginx:1' })).rollout_id];
  for (const kind of ['stop', 'start', 'pull'] as const) ids.push((await c.apps[kind]({ name })).rollout_id);
  const first = await c.rollouts.list({ name, limit: 3 });
  assert.equal(
    first.rollouts.map((r) => r.id),
    ids.slice().reverse().slice(0, 3),
  );
  assert.equal(
    first.rollouts.map((r) => r.action),
    ['pull', 'start', 'stop'],
  );
  assert.is(first.rollouts[1]!.superseded_by, ids[3]);
  assert.is(first.next, ids[1]);
  const second = await c.rollouts.list({ name, limit: 3, before: first.next! });
  assert.equal(
    second.rollouts.map((r) => r.id),
    [ids[0]],
  );
  assert.is(second.next, null);
  await rejects(c.rollouts.list({ name: uniqueName('missing') }), 'FORBIDDEN', { app_exists: false });
  await rejects(c.rollouts.list({ name, before: 'nope' }), 'BAD_REQUEST');
  await rejects(c.rollouts.list({ name, limit: 0 }), 'BAD_REQUEST');
});

test('hosts: list (filters, paging, online/offline from the setting) and get', async () => {
  const tag = uniqueName('h');
  const hb = (id: string, apps: string[], secondsAgo: number) => ({
    id,
    apps,
    running: JSON.stringify([{ app: apps[0], incarnation: 1, revision: 2, containers: [{ id: 'c1', name: `${apps[0]}-1`, state: 'running' }] }]),
    cores: 4,
    memory_mb: 2048,
    worker_version: '1.2.3',
    heartbeat_interval_seconds: 10,
    last_seen: new Date(Date.now() - secondsAgo * 1000),
  });
  await env.db
    .insertInto('hosts')
    .values([hb(`${tag}-a`, [tag], 1), hb(`${tag}-b`, [tag], 45), hb(`${tag}-c`, [tag], 3600)])
    .execute();
  const all = await caller().hosts.list({ app: tag });
  assert.equal(
    all.hosts.map((h) => [h.id, h.status]),
    [
      [`${tag}-a`, 'online'],
      [`${tag}-b`, 'offline'],
      [`${tag}-c`, 'offline'],
    ],
  );
  assert.equal(all.hosts[0]!.running[0]!.revision, 2);
  assert.is(all.hosts[0]!.worker_version, '1.2.3');
  // Five missed heartbeats allowed: the host silent for 45 s (4.5 intervals) is online again.
  const lenient = appRouter.createCaller({
    db: env.db,
    log: silentLog,
    identity: { name: 'a', method: 'basic', kind: 'local-admin', permissions: ADMIN_PERMISSIONS },
    settings: { offlineAfterMissedHeartbeats: 5 },
  });
  assert.equal(
    (await lenient.hosts.list({ app: tag, status: 'online' })).hosts.map((h) => h.id),
    [`${tag}-a`, `${tag}-b`],
  );
  assert.equal(
    (await caller().hosts.list({ app: tag, status: 'offline' })).hosts.map((h) => h.id),
    [`${tag}-b`, `${tag}-c`],
  );
  const page = await caller().hosts.list({ app: tag, limit: 2 });
  assert.is(page.next, `${tag}-b`);
  assert.equal(
    (await caller().hosts.list({ app: tag, after: page.next! })).hosts.map((h) => h.id),
    [`${tag}-c`],
  );
  const one = await caller().hosts.get({ id: `${tag}-c` });
  assert.is(one.status, 'offline');
  assert.ok(Date.parse(one.offline_after) < Date.now());
  await rejects(caller().hosts.get({ id: `${tag}-nope` }), 'FORBIDDEN', { host_exists: false });
  await rejects(caller().hosts.get({ id: 'bad.id' }), 'BAD_REQUEST');
  await rejects(caller().hosts.list({ status: 'gone' as 'online' }), 'BAD_REQUEST');
  assert.ok((await caller().hosts.list()).hosts.length >= 3, 'no input at all: every host');
});

test('delete and re-create: new incarnation, app_id from 1 again, messages distinguishable and newer', async () => {
  const c = caller();
  const name = uniqueName();
  const first = await c.apps.create({ name, docker_image: 'nginx:1' });
  await c.apps.stop({ name });
  const del = await c.apps.delete({ name });
  assert.match(del.rollout_id, /^[0-9a-f-]{36}$/);
  await rejects(c.apps.get({ name }), 'FORBIDDEN', { app_exists: false });
  assert.not.ok((await c.apps.list()).apps.includes(name));
  const second = await c.apps.create({ name, docker_image: 'nginx:2' });
  assert.is(second.app_id, 1);
  assert.ok(second.incarnation > first.incarnation);
  assert.equal(
    (await c.apps.history({ name })).revisions.map((r) => r.app_id),
    [1],
  );

  const msgs = await waitFor('4 messages in the stream', async () => {
    const m = await streamMessages(env.nc, name);
    return m.length >= 4 ? m : undefined;
  });
  assert.equal(
    msgs.map((m) => [m.action, m.incarnation === first.incarnation ? 'old' : 'new', m.revision]),
    [
      ['create', 'old', 1],
      ['stop', 'old', 2],
      ['delete', 'old', 3],
      ['create', 'new', 1],
    ],
  );
  // The delete carries the last config, so workers know what to remove.
  assert.is(msgs[2]!.config.docker_image, 'nginx:1');
  assert.is(msgs[2]!.config.running, false);
  // A worker that saw the old app's delete (revision 3) takes the new create (revision 1) as newer.
  assert.ok(isNewer(msgs[3]!, msgs[2]!));
  assert.is(msgs[3]!.actor, 'alice');
});

test('an unauthenticated context is refused by every procedure', async () => {
  const c = caller(null);
  await rejects(c.status.get(), 'UNAUTHORIZED');
  await rejects(c.apps.list(), 'UNAUTHORIZED');
  await rejects(c.apps.create({ name: uniqueName(), docker_image: 'nginx' }), 'UNAUTHORIZED');
});

test.run();
