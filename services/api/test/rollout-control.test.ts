import { createNebulaClient, httpStatusOf, nebulaErrorBody } from '@nebula/client';
import { ROLLOUT_STATES } from '@nebula/contracts';
import { ROLLOUT_COMMANDS } from '@nebula/db';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, basicHeader, http, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * The API surface of rollouts in waves, over HTTP against a real PostgreSQL with security on: the
 * rollout commands (REST and tRPC through the typed client), who may send them, their refusals, and
 * `?dry_run=true` of the changes (the plan, and nothing written). What the commands do to a rollout
 * in waves is the controller's and the end-to-end tests' part: here every rollout goes all at once,
 * which no command applies to (409), whatever the controller does with waves.
 */
const test = suite('rollout-control');
let env: TestEnv;
let api: ApiServer;
const MISSING = '00000000-0000-4000-8000-000000000000';
const PASSWORDS = { viewer: 'viewer-password-1', deployer: 'deployer-password-1', stranger: 'stranger-password-1' };
const as = (user: keyof typeof PASSWORDS) => basicHeader(user, PASSWORDS[user]);

const req = (method: string, path: string, opts: Parameters<typeof http>[3] = {}) => http(api.url, method, path, opts);

async function create(name: string, body: object = { docker_image: 'nginx' }) {
  const r = await req('POST', `/api/v2/apps/${name}`, { body });
  assert.is(r.status, 200, r.text);
  return r.body as { rollout_id: string; app_id: number };
}

/** Every table a change writes to. */
async function snapshot() {
  const apps = await env.db.selectFrom('apps').selectAll().orderBy('incarnation').execute();
  const revisions = await env.db.selectFrom('app_revisions').select(['incarnation', 'revision']).orderBy('incarnation').orderBy('revision').execute();
  const rollouts = await env.db.selectFrom('rollouts').select('id').orderBy('id').execute();
  const outbox = await env.db.selectFrom('outbox').select('id').orderBy('id').execute();
  return JSON.stringify({ apps, revisions, rollouts, outbox });
}

async function addHosts(app: string, ids: string[]) {
  await env.db
    .insertInto('hosts')
    .values(
      ids.map((id) => ({
        id,
        apps: [app],
        running: '[]',
        cores: 2,
        memory_mb: 512,
        worker_version: 'v',
        heartbeat_interval_seconds: 5,
        last_seen: new Date(),
      })),
    )
    .execute();
}

const APP = uniqueName('web');

test.before(async () => {
  env = await startEnv();
  api = await env.startApi();
  for (const [user, password] of Object.entries(PASSWORDS)) {
    const r = await req('POST', `/api/v2/users/${user}`, { body: { password } });
    assert.is(r.status, 200, r.text);
  }
  for (const [group, members, level] of [
    ['viewers', ['viewer'], 'ro'],
    ['deployers', ['deployer'], 'rw'],
  ] as const) {
    const r = await req('POST', `/api/v2/user_groups/${group}`, { body: { group_members: members, apps: { [APP]: level } } });
    assert.is(r.status, 200, r.text);
  }
});
test.after(async () => env.close());

test('every command of a rollout that went all at once: 409 {"error", "state", "command"}, over REST and tRPC', async () => {
  const { rollout_id } = await create(APP);
  const nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  for (const command of ROLLOUT_COMMANDS) {
    const r = await req('POST', `/api/v2/rollouts/${rollout_id}/${command}`);
    assert.is(r.status, 409, `${command}: ${r.text}`);
    const body = r.body as { error: unknown; state: string; command: string };
    assert.type(body.error, 'string');
    assert.ok((ROLLOUT_STATES as readonly string[]).includes(body.state), r.text);
    assert.is(body.command, command);
    const err = await nebula.rollouts[command].mutate({ id: rollout_id }).then(
      () => assert.unreachable(`${command} over tRPC succeeded`),
      (e: unknown) => e,
    );
    assert.is(httpStatusOf(err), 409, `${command} over tRPC`);
    assert.is(nebulaErrorBody(err)?.command, command);
  }
  const full = await req('POST', `/api/v2/rollouts/${rollout_id}/promote?full=true`);
  assert.is(full.status, 409, full.text);
  assert.is((full.body as { command: string }).command, 'promote');
  const body = await req('POST', `/api/v2/rollouts/${rollout_id}/promote`, { body: { full: true } });
  assert.is(body.status, 409, body.text);
  const typed = await nebula.rollouts.promote.mutate({ id: rollout_id, full: true }).catch((e: unknown) => e);
  assert.is(httpStatusOf(typed), 409);
});

test('commands: a missing rollout is 403 {"rollout_exists": false} as on GET; bad input is 400 naming the field; 405 for GET', async () => {
  const { rollout_id } = await create(uniqueName());
  for (const command of ROLLOUT_COMMANDS) {
    const r = await req('POST', `/api/v2/rollouts/${MISSING}/${command}`);
    assert.is(r.status, 403, r.text);
    assert.is((r.body as { rollout_exists: boolean }).rollout_exists, false);
  }
  assert.is((await req('GET', `/api/v2/rollouts/${MISSING}`)).status, 403, 'the same answer as GET');
  const cases: Array<[string, Parameters<typeof http>[3], string]> = [
    ['/api/v2/rollouts/not-a-uuid/pause', {}, 'id'],
    [`/api/v2/rollouts/${rollout_id}/pause?full=true`, {}, 'full'],
    [`/api/v2/rollouts/${rollout_id}/promote?full=yes`, {}, 'full'],
    [`/api/v2/rollouts/${rollout_id}/promote?full=true&full=false`, {}, 'full'],
    [`/api/v2/rollouts/${rollout_id}/promote`, { body: { full: 'true' } }, 'full'],
    [`/api/v2/rollouts/${rollout_id}/abort`, { body: { reason: 'x' } }, 'reason'],
    [`/api/v2/rollouts/${rollout_id}/abort`, { body: { id: MISSING } }, 'id'],
    [`/api/v2/rollouts/${rollout_id}/resume`, { body: '[1]' }, '(body)'],
    [`/api/v2/rollouts/${rollout_id}/resume`, { body: '{' }, '(body)'],
  ];
  for (const [path, opts, field] of cases) {
    const r = await req('POST', path, opts);
    assert.is(r.status, 400, `${path} ${JSON.stringify(opts)}: ${r.text}`);
    assert.ok(field in (r.body as { errors: object }).errors, `${path}: ${r.text}`);
  }
  const get = await req('GET', `/api/v2/rollouts/${rollout_id}/pause`);
  assert.is(get.status, 405);
  assert.is((await req('POST', `/api/v2/rollouts/${rollout_id}/explode`)).status, 404);
});

test('commands need "rw" on the rollout\'s app: "ro" and no access are refused (403) before anything is done', async () => {
  const { rollout_id } = await create(uniqueName());
  const mine = await req('GET', `/api/v2/apps/${APP}/rollouts?limit=1`);
  const appRollout = (mine.body as { rollouts: Array<{ id: string }> }).rollouts[0]?.id ?? '';
  for (const [user, id] of [
    ['viewer', appRollout],
    ['stranger', appRollout],
    ['deployer', rollout_id], // rw on APP, not on that app
  ] as const) {
    for (const command of ROLLOUT_COMMANDS) {
      const r = await req('POST', `/api/v2/rollouts/${id}/${command}`, { auth: as(user) });
      assert.is(r.status, 403, `${user} ${command}: ${r.text}`);
      assert.is((r.body as { access_allowed: boolean }).access_allowed, false, r.text);
    }
  }
  const allowed = await req('POST', `/api/v2/rollouts/${appRollout}/pause`, { auth: as('deployer') });
  assert.is(allowed.status, 409, `a deployer gets as far as the rollout's state: ${allowed.text}`);
  assert.is((await req('POST', `/api/v2/rollouts/${appRollout}/pause`, { auth: null })).status, 401);
});

test('GET /api/v2/rollouts/{id} carries state, wave, waves, abort_reason and rollback_rollout_id', async () => {
  const { rollout_id } = await create(uniqueName());
  const r = await req('GET', `/api/v2/rollouts/${rollout_id}`);
  assert.is(r.status, 200, r.text);
  const p = r.body as Record<string, unknown>;
  for (const k of ['state', 'wave', 'waves', 'abort_reason', 'rollback_rollout_id']) assert.ok(k in p, `${k}: ${r.text}`);
  assert.ok(Array.isArray(p.waves));
});

test("?dry_run=true of create, update (POST, PUT, PATCH) and tRPC: the config and the waves' hosts, nothing written", async () => {
  const name = uniqueName();
  const hosts = ['h-1', 'h-2', 'h-3', 'h-4'].map((h) => `${name}-${h}`);
  await addHosts(name, hosts);
  const strategy = { waves: [25, 50, 100], bake_seconds: 30 };
  const before = await snapshot();
  const c = await req('POST', `/api/v2/apps/${name}?dry_run=true`, { body: { docker_image: 'nginx:1', rollout_strategy: strategy } });
  assert.is(c.status, 200, c.text);
  const plan = c.body as {
    dry_run: boolean;
    config: Record<string, unknown>;
    plan: { members: number; waves: Array<{ wave: number; percent: number; hosts: string[] }> };
  };
  assert.is(plan.dry_run, true);
  assert.is(plan.config.docker_image, 'nginx:1');
  assert.equal((plan.config.rollout_strategy as { waves: number[] }).waves, [25, 50, 100]);
  assert.is(plan.plan.members, 4);
  assert.equal(
    plan.plan.waves.map((w) => [w.wave, w.percent, w.hosts.length]),
    [
      [1, 25, 1],
      [2, 50, 1],
      [3, 100, 2],
    ],
  );
  assert.equal(plan.plan.waves.flatMap((w) => w.hosts).sort(), [...hosts].sort(), 'every member once');
  assert.is(c.headers.get('x-nebula-rollout-id'), null);
  assert.is(await snapshot(), before, 'a dry run of create writes nothing');
  assert.is((await req('GET', `/api/v2/apps/${name}`)).status, 403, 'the app was not created');

  await create(name, { docker_image: 'nginx:1' });
  const stored = await snapshot();
  const patch = await req('PATCH', `/api/v2/apps/${name}/update?dry_run=true`, { body: { rollout_strategy: strategy } });
  assert.is(patch.status, 200, patch.text);
  const p = patch.body as typeof plan;
  assert.equal(p.plan, plan.plan, 'the same hosts in the same order: the order is stable');
  assert.is(p.config.docker_image, 'nginx:1', 'merged into the current config');
  const put = await req('PUT', `/api/v2/apps/${name}/update?dry_run=true`, { body: { docker_image: 'nginx:2' } });
  assert.is(put.status, 200, put.text);
  assert.equal((put.body as typeof plan).plan.waves.length, 1, 'no strategy: one wave of 100%');
  assert.equal((put.body as typeof plan).plan.waves[0]?.percent, 100);
  const post = await req('POST', `/api/v2/apps/${name}/update?dry_run=true`, { body: { docker_image: 'nginx:3' } });
  assert.is(post.status, 200, post.text);
  assert.equal((post.body as typeof plan).config.env_vars, [], 'POST replaces, as the real one');

  const nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  const typed = await nebula.apps.dryRun.patch.mutate({ name, rollout_strategy: strategy });
  assert.equal(typed.plan, plan.plan);
  const typedCreate = await nebula.apps.dryRun.create.mutate({ name: uniqueName(), docker_image: 'nginx' });
  assert.is(typedCreate.plan.members, 0);
  assert.equal(typedCreate.plan.waves, []);
  await nebula.apps.dryRun.update.mutate({ name, docker_image: 'nginx:4' });
  assert.is(await snapshot(), stored, 'no dry run of an update wrote anything');

  // The same refusals as the real changes.
  const exists = await req('POST', `/api/v2/apps/${name}?dry_run=true`, { body: { docker_image: 'nginx' } });
  assert.is(exists.status, 403);
  assert.equal(exists.body, { app_exists: true });
  const missing = await req('PATCH', `/api/v2/apps/${uniqueName('missing')}/update?dry_run=true`, { body: { docker_image: 'x' } });
  assert.is(missing.status, 403);
  assert.equal(missing.body, { app_exists: false });
  const bad = await req('PATCH', `/api/v2/apps/${name}/update?dry_run=maybe`, { body: { docker_image: 'x' } });
  assert.is(bad.status, 400);
  assert.ok('dry_run' in (bad.body as { errors: object }).errors);
  const viewer = await req('PATCH', `/api/v2/apps/${APP}/update?dry_run=true`, { body: { docker_image: 'x' }, auth: as('viewer') });
  assert.is(viewer.status, 403);
  assert.is(await snapshot(), stored);
});

test('rollout_strategy is checked on every change path: 400 naming the field, nothing stored', async () => {
  const name = uniqueName();
  await create(name);
  const before = await snapshot();
  const cases: Array<[string, string, object, string, RegExp]> = [
    [
      'POST',
      `/api/v2/apps/${uniqueName()}`,
      { docker_image: 'nginx', rollout_strategy: { waves: [5, 50] } },
      'rollout_strategy.waves',
      /last wave must be 100/,
    ],
    [
      'POST',
      `/api/v2/apps/${uniqueName()}?dry_run=true`,
      { docker_image: 'nginx', rollout_strategy: { waves: [50, 20, 100] } },
      'rollout_strategy.waves',
      /strictly increasing/,
    ],
    ['POST', `/api/v2/apps/${name}/update`, { docker_image: 'nginx', rollout_strategy: { waves: [0, 100] } }, 'rollout_strategy.waves.0', /more than 0/],
    ['PATCH', `/api/v2/apps/${name}/update`, { rollout_strategy: { waves: [100], bake: 3 } }, 'rollout_strategy.bake', /unknown field/],
    ['PUT', `/api/v2/apps/${name}/update`, { rollout_strategy: { waves: [10, 100], on_failure: 'explode' } }, 'rollout_strategy.on_failure', /./],
    ['PATCH', `/api/v2/apps/${name}/update?dry_run=true`, { rollout_strategy: { waves: [10] } }, 'rollout_strategy.waves', /last wave must be 100/],
    ['PATCH', `/api/v2/apps/${name}/update`, { rollout_strategy: { waves: [100], max_failed_percent: 120 } }, 'rollout_strategy.max_failed_percent', /./],
  ];
  for (const [method, path, body, field, message] of cases) {
    const r = await req(method, path, { body });
    assert.is(r.status, 400, `${method} ${path}: ${r.text}`);
    const errors = (r.body as { errors: Record<string, string[]> }).errors;
    assert.ok(field in errors, `${method} ${path}: ${r.text}`);
    assert.match(errors[field]?.join(' ') ?? '', message);
  }
  assert.is(await snapshot(), before);
  const ok = await req('PATCH', `/api/v2/apps/${name}/update`, { body: { rollout_strategy: { waves: [5, 25, 100], bake_seconds: 30 } } });
  assert.is(ok.status, 202, ok.text);
  const cleared = await req('PATCH', `/api/v2/apps/${name}/update`, { body: { rollout_strategy: null } });
  assert.is(cleared.status, 202, cleared.text);
  assert.is((cleared.body as { rollout_strategy: unknown }).rollout_strategy, null);
});

test("/openapi.json lists the rollout commands, promote's full, dry_run, and the new progress fields", async () => {
  const r = await req('GET', '/openapi.json');
  const doc = r.body as {
    paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }>; responses: Record<string, unknown> }>>;
  };
  for (const command of ROLLOUT_COMMANDS) assert.ok(doc.paths[`/api/v2/rollouts/{id}/${command}`]?.post, command);
  const params = (path: string, method: string) => (doc.paths[path]?.[method]?.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
  assert.ok(params('/api/v2/rollouts/{id}/promote', 'post').includes('full'));
  for (const [path, method] of [
    ['/api/v2/apps/{name}', 'post'],
    ['/api/v2/apps/{name}/update', 'post'],
    ['/api/v2/apps/{name}/update', 'patch'],
    ['/api/v2/apps/{name}/update', 'put'],
  ] as const) {
    assert.ok(params(path, method).includes('dry_run'), `${method} ${path}`);
  }
  const text = JSON.stringify(doc.paths['/api/v2/rollouts/{id}']?.get?.responses);
  for (const field of ['"state"', '"waves"', '"abort_reason"', '"rollback_rollout_id"', '"rolled_back"']) assert.ok(text.includes(field), field);
});

test.run();
