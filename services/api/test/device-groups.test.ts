import { jetstreamManager } from '@nats-io/jetstream';
import { keyFromSeed, SIGNATURE_HEADER, verifyMessage } from '@nebula/bus-auth';
import { createNebulaClient, httpStatusOf } from '@nebula/client';
import { type GroupMessage, groupMessageSchema, streams } from '@nebula/contracts';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, basicHeader, type HttpResult, http, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * Device groups over the real API (PostgreSQL, NATS, security on): the original's routes, codes and
 * bodies; the outbox rows and rollouts each change writes (one message per change, seq growing,
 * expected hosts from the hosts that follow the group); a cron job's update messaging its groups;
 * app and cron job deletes refused while a group names them; who may read, change and prune.
 */
const test = suite('device-groups');
let env: TestEnv;
let api: ApiServer;

const req = (method: string, path: string, opts: Parameters<typeof http>[3] = {}): Promise<HttpResult> => http(api.url, method, path, opts);
const PASSWORDS = { viewer: 'viewer-password-1', deployer: 'deployer-password-1', pruner: 'pruner-password-1' };
const as = (user: keyof typeof PASSWORDS) => basicHeader(user, PASSWORDS[user]);

type Doc = { device_group: string; device_group_id: number; prune_id: number; apps: string[]; cron_jobs: string[]; seq: number; rollout_id: string };

async function app(name = uniqueName('app')): Promise<string> {
  const r = await req('POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx:1.27', env_vars: { SECRET: 's3' } } });
  assert.is(r.status, 200, r.text);
  return name;
}

async function cron(name = uniqueName('job')): Promise<string> {
  const r = await req('POST', `/api/v2/cron_jobs/${name}`, { body: { docker_image: 'busybox', schedule: '*/5 * * * *' } });
  assert.is(r.status, 200, r.text);
  return name;
}

async function messagesOf(group: string): Promise<GroupMessage[]> {
  const rows = await env.db.selectFrom('outbox').select(['payload', 'msg_id']).where('subject', '=', `groups.${group}`).orderBy('id').execute();
  return rows.map((r) => {
    const m = groupMessageSchema.parse(r.payload);
    assert.is(r.msg_id, m.rollout_id, 'msg id is the rollout id');
    return m;
  });
}

async function rolloutOf(id: string) {
  return env.db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

async function host(id: string, group: string | null, online = true) {
  await env.db
    .insertInto('hosts')
    .values({
      id,
      apps: [],
      running: '[]',
      cores: 1,
      memory_mb: 256,
      worker_version: 't',
      heartbeat_interval_seconds: 5,
      last_seen: online ? new Date() : new Date(Date.now() - 3_600_000),
      device_group: group,
    })
    .execute();
}

const GROUP_RO = uniqueName('g');
const GROUP_RW = uniqueName('g');

test.before(async () => {
  env = await startEnv();
  api = await env.startApi();
  for (const u of Object.keys(PASSWORDS) as Array<keyof typeof PASSWORDS>) {
    assert.is((await req('POST', `/api/v2/users/${u}`, { body: { password: PASSWORDS[u] } })).status, 200);
  }
  await req('POST', '/api/v2/user_groups/viewers', { body: { group_members: ['viewer'], device_groups: { [GROUP_RO]: 'ro' } } });
  await req('POST', '/api/v2/user_groups/deployers', { body: { group_members: ['deployer'], device_groups: { [GROUP_RO]: 'rw', [GROUP_RW]: 'rw' } } });
  await req('POST', '/api/v2/user_groups/pruners', { body: { group_members: ['pruner'], pruning_allowed: true } });
});
test.after(async () => env.close());

test('the original routes: create 200, exists 403, list, get, info, POST update 202 (+1), PUT keeps the other list, prune 202, /prune, delete 200 {}', async () => {
  const [a1, a2, j1] = [await app(), await app(), await cron()];
  const g = uniqueName('g');
  const created = await req('POST', `/api/v2/device_groups/${g}`, { body: { apps: [a1], cron_jobs: [j1] } });
  assert.is(created.status, 200, created.text);
  const doc = created.body as Doc;
  assert.equal([doc.device_group, doc.device_group_id, doc.prune_id, doc.apps, doc.cron_jobs], [g, 1, 1, [a1], [j1]]);
  assert.is(created.headers.get('x-nebula-rollout-id'), doc.rollout_id);
  assert.equal((await req('POST', `/api/v2/device_groups/${g}`, { body: { apps: [] } })).body, { device_group_exists: true });
  assert.ok(((await req('GET', '/api/v2/device_groups')).body as { device_groups: string[] }).device_groups.includes(g));
  const got = await req('GET', `/api/v2/device_groups/${g}`);
  assert.is(got.status, 200);
  assert.equal((got.body as Doc).apps, [a1]);

  const info = await req('GET', `/api/v2/device_groups/${g}/info`);
  assert.is(info.status, 200, info.text);
  const i = info.body as {
    apps: Array<{ app_name: string; docker_image: string; env_vars: unknown }>;
    apps_list: string[];
    cron_jobs: Array<{ cron_job_name: string }>;
    cron_jobs_list: string[];
    prune_id: number;
    device_group_id: number;
  };
  assert.equal([i.apps_list, i.cron_jobs_list, i.prune_id, i.device_group_id], [[a1], [j1], 1, 1]);
  assert.equal([i.apps[0]?.app_name, i.apps[0]?.docker_image, i.apps[0]?.env_vars], [a1, 'nginx:1.27', { SECRET: 's3' }]);
  assert.is(i.cron_jobs[0]?.cron_job_name, j1);

  const replaced = await req('POST', `/api/v2/device_groups/${g}/update`, { body: { apps: [a1, a2] } });
  assert.is(replaced.status, 202, replaced.text);
  assert.equal(
    [(replaced.body as Doc).device_group_id, (replaced.body as Doc).apps, (replaced.body as Doc).cron_jobs],
    [2, [a1, a2], []],
    'POST replaces both lists',
  );
  const put = await req('PUT', `/api/v2/device_groups/${g}/update`, { body: { cron_jobs: [j1] } });
  assert.is(put.status, 202, put.text);
  assert.equal([(put.body as Doc).device_group_id, (put.body as Doc).apps, (put.body as Doc).cron_jobs], [3, [a1, a2], [j1]], 'PUT keeps the list not given');
  const patched = await req('PATCH', `/api/v2/device_groups/${g}/update`, { body: { remove_apps: [a1], add_apps: [a2] } });
  assert.equal([(patched.body as Doc).device_group_id, (patched.body as Doc).apps], [4, [a2]]);

  // The SDK's bodyless POST: Content-Type application/json, no body.
  const pruned = await req('POST', `/api/v2/device_groups/${g}/prune`);
  assert.is(pruned.status, 202, pruned.text);
  assert.equal([(pruned.body as Doc).prune_id, (pruned.body as Doc).device_group_id], [2, 4]);
  const all = await req('POST', '/api/v2/prune');
  assert.is(all.status, 202, all.text);
  assert.is((all.body as { prune_ids: Record<string, number> }).prune_ids[g], 3);

  const deleted = await req('DELETE', `/api/v2/device_groups/${g}`);
  assert.is(deleted.status, 200);
  assert.equal(deleted.body, {});
  assert.equal((await req('GET', `/api/v2/device_groups/${g}`)).body, { device_group_exists: false });
  assert.is((await req('GET', `/api/v2/device_groups/${g}`)).status, 403);

  // Made again: a new incarnation whose counters start above the deleted one's.
  const again = (await req('POST', `/api/v2/device_groups/${g}`)).body as Doc;
  assert.equal([again.device_group_id, again.prune_id, again.apps], [5, 4, []], 'bodyless create: an empty group, ids above the old ones');
});

test('refusals in the original bodies; nothing stored', async () => {
  const a = await app();
  const g = uniqueName('g');
  const before = await env.db.selectFrom('device_groups').select('incarnation').execute();
  const cases: Array<[string, string, unknown, number, Record<string, unknown>]> = [
    ['POST', `/api/v2/device_groups/${g}`, { apps: 'x' }, 400, { apps_is_list: false }],
    ['POST', `/api/v2/device_groups/${g}`, { cron_jobs: 'x' }, 400, { cron_jobs_is_list: false }],
    ['POST', `/api/v2/device_groups/${g}`, { apps: [uniqueName('nope')] }, 403, { app_exists: false }],
    ['POST', `/api/v2/device_groups/${g}`, { apps: [uniqueName('nope')], cron_jobs: [uniqueName('nope')] }, 403, { cron_job_exists: false }],
    ['POST', `/api/v2/device_groups/${g}`, '{"apps": [', 400, { missing_parameters: true }],
    ['POST', `/api/v2/device_groups/${g}`, [a], 400, { missing_parameters: true }],
    ['POST', `/api/v2/device_groups/${g}/update`, { apps: [a] }, 403, { device_group_exists: false }],
    ['PUT', `/api/v2/device_groups/${g}/update`, { apps: [a] }, 403, { device_group_exists: false }],
    ['POST', `/api/v2/device_groups/${g}/prune`, undefined, 403, { device_group_exists: false }],
    ['DELETE', `/api/v2/device_groups/${g}`, undefined, 403, { device_group_exists: false }],
    ['GET', `/api/v2/device_groups/${g}/info`, undefined, 403, { device_group_exists: false }],
  ];
  for (const [method, path, body, status, want] of cases) {
    const r = await req(method, path, body === undefined ? {} : { body: body as object });
    assert.is(r.status, status, `${method} ${path} ${JSON.stringify(body)}: ${r.text}`);
    for (const [k, v] of Object.entries(want)) assert.equal((r.body as Record<string, unknown>)[k], v, `${method} ${path}: ${r.text}`);
  }
  assert.is((await env.db.selectFrom('device_groups').select('incarnation').execute()).length, before.length);
  // An empty PUT says what is missing.
  await req('POST', `/api/v2/device_groups/${g}`, { body: { apps: [a] } });
  const empty = await req('PUT', `/api/v2/device_groups/${g}/update`, { body: {} });
  assert.is(empty.status, 400);
  assert.is((empty.body as { missing_parameters: unknown }).missing_parameters, true);
  const bodyless = await req('POST', `/api/v2/device_groups/${g}/update`);
  assert.is(bodyless.status, 400, 'a bodyless POST update does not empty the group');
  assert.equal(((await req('GET', `/api/v2/device_groups/${g}`)).body as Doc).apps, [a]);
});

test("a group's changes read as rollouts (kind group, prune and cron_job actions too): rollouts.get with ro on the group, deviceGroups.rollouts newest first", async () => {
  const [a, j] = [await app(), await cron()];
  const g = GROUP_RO;
  await host(`${g}-h1`, g);
  const created = (await req('POST', `/api/v2/device_groups/${g}`, { body: { apps: [a], cron_jobs: [j] } })).body as Doc;
  const pruned = (await req('POST', `/api/v2/device_groups/${g}/prune`)).body as Doc;
  assert.is((await req('POST', `/api/v2/cron_jobs/${j}/update`, { body: { docker_image: 'busybox:1.36', schedule: '*/5 * * * *' } })).status, 202);
  const admin = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  const viewer = createNebulaClient({ url: api.url, username: 'viewer', password: PASSWORDS.viewer });
  // Before: the summary's action was an app action only, so a prune's rollout failed the output check (500).
  const p = await viewer.rollouts.get.query({ id: pruned.rollout_id });
  assert.equal([p.kind, p.app, p.action, p.revision, p.expected], ['group', g, 'prune', 2, 1]);
  const list = await viewer.deviceGroups.rollouts.query({ name: g });
  assert.equal(
    list.rollouts.map((r) => [r.kind, r.action, r.revision]),
    [
      ['group', 'cron_job', 3],
      ['group', 'prune', 2],
      ['group', 'create', 1],
    ],
  );
  assert.is(list.rollouts[2]?.id, created.rollout_id);
  // An app's rollout stays kind app; no right on the group: refused before the lookup.
  const appRollout = (await req('GET', `/api/v2/apps/${a}`)).body as { rollout_id: string };
  assert.is((await admin.rollouts.get.query({ id: appRollout.rollout_id })).kind, 'app');
  const pruner = createNebulaClient({ url: api.url, username: 'pruner', password: PASSWORDS.pruner });
  assert.is(httpStatusOf(await pruner.rollouts.get.query({ id: created.rollout_id }).catch((e: unknown) => e)), 403);
  assert.is(httpStatusOf(await pruner.deviceGroups.rollouts.query({ name: g }).catch((e: unknown) => e)), 403);
  assert.is(httpStatusOf(await admin.deviceGroups.rollouts.query({ name: uniqueName('never') }).catch((e: unknown) => e)), 403);
  await req('DELETE', `/api/v2/device_groups/${g}`);
});

test('each change writes one group message and one rollout: seq grows, cron jobs in full, expected hosts follow the group and are online', async () => {
  const [a, j] = [await app(), await cron()];
  const g = uniqueName('g');
  await host(`${g}-h1`, g);
  await host(`${g}-h2`, g);
  await host(`${g}-away`, g, false);
  await host(`${g}-other`, uniqueName('g'));
  const created = (await req('POST', `/api/v2/device_groups/${g}`, { body: { apps: [a], cron_jobs: [j] } })).body as Doc;
  const updated = (await req('PUT', `/api/v2/device_groups/${g}/update`, { body: { apps: [] } })).body as Doc;
  const pruned = (await req('POST', `/api/v2/device_groups/${g}/prune`)).body as Doc;
  const deleted = await req('DELETE', `/api/v2/device_groups/${g}`);
  const msgs = await messagesOf(g);
  assert.equal(
    msgs.map((m) => [m.seq, m.device_group_id, m.prune_id, m.deleted, m.apps, m.cron_jobs.map((c) => c.name)]),
    [
      [1, 1, 1, false, [a], [j]],
      [2, 2, 1, false, [], [j]],
      [3, 2, 2, false, [], [j]],
      [4, 2, 2, true, [], []],
    ],
  );
  assert.equal(
    msgs.map((m) => m.rollout_id),
    [created.rollout_id, updated.rollout_id, pruned.rollout_id, deleted.headers.get('x-nebula-rollout-id')],
  );
  const job = msgs[0]?.cron_jobs[0];
  assert.equal([job?.cron_job_id, job?.config.docker_image, job?.config.schedule], [1, 'busybox', '*/5 * * * *']);
  assert.ok(msgs.every((m) => m.incarnation === msgs[0]?.incarnation && m.actor === 'admin'));
  const r = await rolloutOf(created.rollout_id);
  assert.equal(
    [r.kind, r.device_group, r.app, r.incarnation, r.revision, r.action, [...r.expected_hosts].sort()],
    ['group', g, g, String(msgs[0]?.incarnation), 1, 'create', [`${g}-h1`, `${g}-h2`]],
  );
  assert.equal(await Promise.all(msgs.map(async (m) => (await rolloutOf(m.rollout_id)).action)), ['create', 'update', 'prune', 'delete']);
  // The relay publishes them, signed by the control plane, to GROUPS.
  const jsm = await jetstreamManager(env.nc);
  const signer = keyFromSeed(env.nats.keys.message_signing_seed).getPublicKey();
  await waitFor(
    'the last group message in GROUPS',
    async () => {
      const last = await jsm.direct.getMessage(streams.groups.name, { last_by_subj: `groups.${g}` }).catch(() => null);
      if (!last) return false;
      assert.ok(verifyMessage(signer, last.subject, last.data, last.header?.get(SIGNATURE_HEADER)), 'signed');
      return groupMessageSchema.parse(last.json()).deleted;
    },
    10_000,
    100,
  );
  await waitFor('the rollout marked published', async () => (await rolloutOf(created.rollout_id)).published_at !== null, 10_000, 100);
});

test("a cron job's update writes a message for every live group naming it, with the new config", async () => {
  const j = await cron();
  const [g1, g2, g3] = [uniqueName('g'), uniqueName('g'), uniqueName('g')];
  await req('POST', `/api/v2/device_groups/${g1}`, { body: { cron_jobs: [j] } });
  await req('POST', `/api/v2/device_groups/${g2}`, { body: { cron_jobs: [j] } });
  await req('POST', `/api/v2/device_groups/${g3}`, { body: {} });
  const r = await req('PATCH', `/api/v2/cron_jobs/${j}/update`, { body: { schedule: '0 4 * * *' } });
  assert.is(r.status, 202, r.text);
  for (const g of [g1, g2]) {
    const msgs = await messagesOf(g);
    assert.is(msgs.length, 2);
    const last = msgs[1];
    assert.equal([last?.seq, last?.device_group_id, last?.cron_jobs[0]?.cron_job_id, last?.cron_jobs[0]?.config.schedule], [2, 1, 2, '0 4 * * *']);
    assert.is((await rolloutOf(last?.rollout_id ?? '')).action, 'cron_job');
  }
  assert.is((await messagesOf(g3)).length, 1, 'a group that does not name the job is left alone');
});

test('deleting an app or a cron job a live group names is refused (409, naming the groups), nothing changed; allowed once removed', async () => {
  const [a, j] = [await app(), await cron()];
  const [g1, g2] = [uniqueName('g'), uniqueName('g')].sort() as [string, string];
  await req('POST', `/api/v2/device_groups/${g1}`, { body: { apps: [a], cron_jobs: [j] } });
  await req('POST', `/api/v2/device_groups/${g2}`, { body: { apps: [a] } });
  const outbox = (await env.db.selectFrom('outbox').select('id').execute()).length;
  const delApp = await req('DELETE', `/api/v2/apps/${a}`);
  assert.is(delApp.status, 409, delApp.text);
  assert.equal(delApp.body, { error: `app ${a} is in device groups ${g1}, ${g2}: remove it from them first`, device_groups: [g1, g2] });
  const delJob = await req('DELETE', `/api/v2/cron_jobs/${j}`);
  assert.is(delJob.status, 409, delJob.text);
  assert.equal((delJob.body as { device_groups: string[] }).device_groups, [g1]);
  assert.is((await req('GET', `/api/v2/apps/${a}`)).status, 200);
  assert.is((await req('GET', `/api/v2/cron_jobs/${j}`)).status, 200);
  assert.is((await env.db.selectFrom('outbox').select('id').execute()).length, outbox, 'no message written');

  await req('DELETE', `/api/v2/device_groups/${g1}`);
  await req('PUT', `/api/v2/device_groups/${g2}/update`, { body: { apps: [] } });
  assert.is((await req('DELETE', `/api/v2/apps/${a}`)).status, 200);
  assert.is((await req('DELETE', `/api/v2/cron_jobs/${j}`)).status, 200);
});

test('concurrent: a group naming an app and the app delete never both win', async () => {
  for (let i = 0; i < 5; i++) {
    const a = await app();
    const g = uniqueName('g');
    const [c, d] = await Promise.all([req('POST', `/api/v2/device_groups/${g}`, { body: { apps: [a] } }), req('DELETE', `/api/v2/apps/${a}`)]);
    assert.ok((c.status === 200) !== (d.status === 200), `create ${c.status} ${c.text}, delete ${d.status} ${d.text}`);
  }
});

test('permissions: ro reads, rw changes, prune needs pruning_allowed; a refused caller learns nothing', async () => {
  const a = await app();
  await req('POST', `/api/v2/device_groups/${GROUP_RO}`, { body: { apps: [a] } });
  assert.is((await req('GET', `/api/v2/device_groups/${GROUP_RO}`, { auth: as('viewer') })).status, 200);
  const info = await req('GET', `/api/v2/device_groups/${GROUP_RO}/info`, { auth: as('viewer') });
  assert.is(info.status, 200);
  assert.equal((info.body as { apps: Array<{ env_vars: unknown }> }).apps[0]?.env_vars, { SECRET: '(hidden)' }, 'env values only with rw on the app');
  for (const [method, path, body] of [
    ['PUT', `/api/v2/device_groups/${GROUP_RO}/update`, { apps: [] }],
    ['POST', `/api/v2/device_groups/${GROUP_RO}/prune`, undefined],
    ['DELETE', `/api/v2/device_groups/${GROUP_RO}`, undefined],
    ['POST', '/api/v2/prune', undefined],
    ['GET', `/api/v2/device_groups/${uniqueName('g')}`, undefined],
  ] as const) {
    const r = await req(method, path, { auth: as('viewer'), ...(body ? { body } : {}) });
    assert.is(r.status, 403, `${method} ${path}`);
    assert.equal(r.body, { access_allowed: false }, `${method} ${path}`);
  }
  assert.ok(((await req('GET', '/api/v2/device_groups', { auth: as('viewer') })).body as { device_groups: string[] }).device_groups.includes(GROUP_RO));
  const upd = await req('PUT', `/api/v2/device_groups/${GROUP_RO}/update`, { auth: as('deployer'), body: { apps: [] } });
  assert.is(upd.status, 202, upd.text);
  assert.is((await req('POST', `/api/v2/device_groups/${GROUP_RW}`, { auth: as('deployer'), body: {} })).status, 200);
  assert.is((await req('POST', `/api/v2/device_groups/${GROUP_RW}/prune`, { auth: as('deployer') })).status, 403, 'rw is not pruning');
  assert.is((await req('POST', `/api/v2/device_groups/${uniqueName('g')}`, { auth: as('deployer'), body: {} })).status, 403);
  const pruned = await req('POST', `/api/v2/device_groups/${GROUP_RW}/prune`, { auth: as('pruner') });
  assert.is(pruned.status, 202, pruned.text);
  assert.is((await req('POST', '/api/v2/prune', { auth: as('pruner') })).status, 202);
});

test("a group change's rollout commands need rw on the group (not on an app of its name): ro refused, rw reaches the controller", async () => {
  const g = GROUP_RW;
  await req('POST', `/api/v2/device_groups/${g}`, { body: {} });
  const changed = (await req('PUT', `/api/v2/device_groups/${g}/update`, { body: { apps: [] } })).body as Doc;
  const viewer = await req('POST', `/api/v2/rollouts/${changed.rollout_id}/pause`, { auth: as('viewer') });
  assert.is(viewer.status, 403, viewer.text);
  assert.equal(viewer.body, { access_allowed: false });
  // The deployer has rw on the group and no right on any app: before, the check was on an app named g (403).
  const deployer = await req('POST', `/api/v2/rollouts/${changed.rollout_id}/pause`, { auth: as('deployer') });
  assert.is(deployer.status, 409, deployer.text);
  assert.is((deployer.body as { command: string }).command, 'pause');
});

test("an app and a group of one name keep their rollouts apart (the app's latest rollout is its own)", async () => {
  const a = await app();
  await req('POST', `/api/v2/device_groups/${a}`, { body: { apps: [a] } });
  const got = (await req('GET', `/api/v2/apps/${a}`)).body as { rollout: { id: string; action: string } | null; rollout_id: string };
  assert.is(got.rollout?.id, got.rollout_id);
  assert.is(got.rollout?.action, 'create');
  const listed = (await req('GET', `/api/v2/apps/${a}/rollouts`)).body as { rollouts: unknown[] };
  assert.is(listed.rollouts.length, 1);
});

test('tRPC and OpenAPI: the procedures and every route documented', async () => {
  const doc = (await req('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
  for (const [path, methods] of Object.entries({
    '/api/v2/device_groups': ['get'],
    '/api/v2/device_groups/{name}': ['get', 'post', 'delete'],
    '/api/v2/device_groups/{name}/update': ['post', 'put', 'patch'],
    '/api/v2/device_groups/{name}/info': ['get'],
    '/api/v2/device_groups/{name}/prune': ['post'],
    '/api/v2/prune': ['post'],
  })) {
    for (const m of methods) assert.ok(doc.paths[path]?.[m], `${m} ${path}`);
  }
  const r = await req('POST', '/trpc/deviceGroups.create', { body: { name: uniqueName('g'), apps: [] } });
  assert.is(r.status, 200, r.text);
});

test.run();
