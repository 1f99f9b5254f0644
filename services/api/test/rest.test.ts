import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { http, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/** The REST routes over HTTP: the original's /api/v2 shapes and status codes, ours, and bad input. */
const test = suite('rest');
let env: TestEnv;
let api: ApiServer;
const MAX_BODY = 64 * 1024;

const req = (method: string, path: string, opts: Parameters<typeof http>[3] = {}) => http(api.url, method, path, opts);

async function snapshot() {
  const apps = await env.db.selectFrom('apps').selectAll().orderBy('incarnation').execute();
  const revisions = await env.db.selectFrom('app_revisions').select(['incarnation', 'revision']).orderBy('incarnation').orderBy('revision').execute();
  const outbox = await env.db.selectFrom('outbox').select('id').orderBy('id').execute();
  return JSON.stringify({ apps, revisions, outbox });
}

async function create(name: string, body: object = { docker_image: 'nginx' }) {
  const r = await req('POST', `/api/v2/apps/${name}`, { body });
  assert.is(r.status, 200, r.text);
  return r.body as Record<string, unknown>;
}

test.before(async () => {
  env = await startEnv();
  api = await env.startApi({ maxBodyBytes: MAX_BODY });
});
test.after(async () => env.close());

test('GET /api/v2/status: 200 {"api_available": true}', async () => {
  const r = await req('GET', '/api/v2/status');
  assert.is(r.status, 200);
  assert.equal(r.body, { api_available: true });
});

test('POST /api/v2/apps/<app>: 200 with the stored app; GET one; GET list', async () => {
  const name = uniqueName();
  const doc = await create(name, {
    docker_image: `127.0.0.1:5000/team/web:1.2@sha256:${'a'.repeat(64)}`,
    starting_ports: [8080, { '81': '80' }],
    env_vars: { A: 'x' },
  });
  assert.is(doc.app_name, name);
  assert.is(doc.app_id, 1);
  assert.equal(doc.containers_per, { server: 1 });
  assert.is(doc.running, true);
  assert.type(doc.rollout_id, 'string');
  const got = await req('GET', `/api/v2/apps/${name}`);
  assert.is(got.status, 200);
  const { rollout, publish_errors, ...original } = got.body as Record<string, unknown> & {
    rollout: { id: string; revision: number; action: string };
    publish_errors: unknown[];
  };
  assert.equal(original, doc, 'the original fields, unchanged');
  assert.equal(publish_errors, [], 'plus the revisions that could never be published');
  assert.equal([rollout.id, rollout.revision, rollout.action], [doc.rollout_id, 1, 'create'], 'plus the latest rollout');
  const list = await req('GET', '/api/v2/apps');
  assert.is(list.status, 200);
  assert.ok((list.body as { apps: string[] }).apps.includes(name));
});

test('create: 403 {"app_exists": true} for an existing app; drone-style app_name in the body accepted', async () => {
  const name = uniqueName();
  const doc = await create(name, { app_name: name, docker_image: 'nginx' });
  assert.is(doc.app_name, name);
  const before = await snapshot();
  const r = await req('POST', `/api/v2/apps/${name}`, { body: { docker_image: 'redis' } });
  assert.is(r.status, 403);
  assert.equal(r.body, { app_exists: true });
  assert.is(await snapshot(), before);
});

test('missing app: 403 {"app_exists": false} on every original route', async () => {
  const name = uniqueName('missing');
  const calls: Array<[string, string, object?]> = [
    ['GET', `/api/v2/apps/${name}`],
    ['DELETE', `/api/v2/apps/${name}`],
    ['POST', `/api/v2/apps/${name}/stop`],
    ['POST', `/api/v2/apps/${name}/start`],
    ['POST', `/api/v2/apps/${name}/restart`],
    ['POST', `/api/v2/apps/${name}/update`, { docker_image: 'nginx' }],
    ['PUT', `/api/v2/apps/${name}/update`, { running: false }],
    ['PATCH', `/api/v2/apps/${name}/update`, { running: false }],
  ];
  for (const [method, path, body] of calls) {
    const r = await req(method, path, body ? { body } : {});
    assert.is(r.status, 403, `${method} ${path}`);
    assert.equal(r.body, { app_exists: false }, `${method} ${path}`);
  }
});

test('stop/start/restart: 202 with the updated app and rollout_id; SDK-style empty JSON bodies', async () => {
  const name = uniqueName();
  await create(name);
  const sdk = { headers: { 'content-type': 'application/json', 'cache-control': 'no-cache' } };
  const stop = await req('POST', `/api/v2/apps/${name}/stop`, sdk);
  assert.is(stop.status, 202);
  assert.is((stop.body as { running: boolean }).running, false);
  assert.is((stop.body as { app_id: number }).app_id, 2);
  assert.is(stop.headers.get('x-nebula-rollout-id'), (stop.body as { rollout_id: string }).rollout_id);
  const restartStopped = await req('POST', `/api/v2/apps/${name}/restart`, sdk);
  assert.is(restartStopped.status, 403);
  assert.equal(restartStopped.body, { running_before_restart: false });
  const start = await req('POST', `/api/v2/apps/${name}/start`);
  assert.is(start.status, 202);
  assert.is((start.body as { running: boolean }).running, true);
  const restart = await req('POST', `/api/v2/apps/${name}/restart`, sdk);
  assert.is(restart.status, 202);
  assert.is((restart.body as { app_id: number }).app_id, 4);
});

test('POST update replaces (env_vars -> []); PUT and PATCH merge; 202', async () => {
  const name = uniqueName();
  await create(name, { docker_image: 'nginx', env_vars: { A: '1' }, privileged: true });
  const post = await req('POST', `/api/v2/apps/${name}/update`, { body: { docker_image: 'nginx:2', app_name: name } });
  assert.is(post.status, 202);
  const doc = post.body as Record<string, unknown>;
  assert.equal(doc.env_vars, []);
  assert.is(doc.privileged, false);
  assert.is(doc.app_id, 2);
  const put = await req('PUT', `/api/v2/apps/${name}/update`, { body: { env_vars: { B: '2' } } });
  assert.is(put.status, 202);
  assert.equal((put.body as Record<string, unknown>).env_vars, { B: '2' });
  assert.is((put.body as Record<string, unknown>).docker_image, 'nginx:2');
  const patch = await req('PATCH', `/api/v2/apps/${name}/update`, { body: { running: false } });
  assert.is(patch.status, 202);
  assert.is((patch.body as Record<string, unknown>).app_id, 4);
  assert.is((patch.body as Record<string, unknown>).running, false);
});

test('DELETE: 200 {} (rollout id in a header); the app is gone', async () => {
  const name = uniqueName();
  await create(name);
  const r = await req('DELETE', `/api/v2/apps/${name}`);
  assert.is(r.status, 200);
  assert.equal(r.body, {});
  assert.match(r.headers.get('x-nebula-rollout-id') ?? '', /^[0-9a-f-]{36}$/);
  assert.is((await req('GET', `/api/v2/apps/${name}`)).status, 403);
});

test('create with bad input: 400 JSON naming the fields; nothing stored', async () => {
  const cases: Array<{ body: string | object; expect: (b: Record<string, unknown>) => void; headers?: Record<string, string> }> = [
    { body: '{"docker_image": "nginx"', expect: (b) => assert.equal(b.missing_parameters, ['docker_image']) },
    { body: 'not json at all', expect: (b) => assert.equal(b.missing_parameters, ['docker_image']) },
    { body: '', expect: (b) => assert.equal(b.missing_parameters, ['docker_image']) },
    { body: '[1,2]', expect: (b) => assert.ok('(body)' in (b.errors as object)) },
    { body: '"nginx"', expect: (b) => assert.ok('(body)' in (b.errors as object)) },
    { body: {}, expect: (b) => assert.equal(b.missing_parameters, ['docker_image']) },
    { body: { starting_ports: [80] }, expect: (b) => assert.equal(b.missing_parameters, ['docker_image']) },
    { body: { docker_image: 42 }, expect: (b) => assert.ok('docker_image' in (b.errors as object)) },
    { body: { docker_image: 'UPPER/Case Image' }, expect: (b) => assert.ok('docker_image' in (b.errors as object)) },
    { body: { docker_image: 'nginx', running: 'true' }, expect: (b) => assert.ok('running' in (b.errors as object)) },
    { body: { docker_image: 'nginx', starting_ports: '80' }, expect: (b) => assert.ok('starting_ports' in (b.errors as object)) },
    { body: { docker_image: 'nginx', starting_ports: [0] }, expect: (b) => assert.ok('starting_ports.0' in (b.errors as object)) },
    { body: { docker_image: 'nginx', starting_ports: [65536] }, expect: (b) => assert.ok('starting_ports.0' in (b.errors as object)) },
    {
      body: { docker_image: 'nginx', starting_ports: [{ '99999': '80' }] },
      expect: (b) => assert.ok(Object.keys(b.errors as object).some((k) => k.startsWith('starting_ports'))),
    },
    { body: { docker_image: 'nginx', starting_ports: [8080, 8080] }, expect: (b) => assert.match(JSON.stringify(b.errors), /used twice/) },
    { body: { docker_image: 'nginx', starting_ports: [81, { '81': '80' }] }, expect: (b) => assert.match(JSON.stringify(b.errors), /used twice/) },
    { body: { docker_image: 'nginx', foo: 1, bar: 2 }, expect: (b) => assert.equal(Object.keys(b.errors as object).sort(), ['bar', 'foo']) },
    { body: { docker_image: 'nginx', containers_per: { server: 1, cpu: 1 } }, expect: (b) => assert.ok('containers_per' in (b.errors as object)) },
    { body: { docker_image: 'nginx', volumes: ['nocolon'] }, expect: (b) => assert.ok('volumes.0' in (b.errors as object)) },
    { body: { docker_image: 'nginx', devices: ['dev/sda'] }, expect: (b) => assert.ok('devices.0' in (b.errors as object)) },
    {
      body: { docker_image: 'nginx', env_vars: { '1BAD': 'x' } },
      expect: (b) => assert.ok(Object.keys(b.errors as object).some((k) => k.startsWith('env_vars'))),
    },
    { body: { docker_image: 'nginx', networks: ['host', 'bridge'] }, expect: (b) => assert.ok('networks' in (b.errors as object)) },
    { body: { docker_image: 'nginx', app_name: 'someone-else' }, expect: (b) => assert.ok('app_name' in (b.errors as object)) },
    { body: { docker_image: 'nginx', name: 'x' }, expect: (b) => assert.ok('name' in (b.errors as object)) },
    {
      body: { docker_image: 'nginx', docker_image_typo: 'x', running: 1 },
      expect: (b) => assert.equal(Object.keys(b.errors as object).sort(), ['docker_image_typo', 'running']),
    },
    // Keys that are special on plain JS objects are fields like any other.
    { body: '{"docker_image": "nginx", "__proto__": 1}', expect: (b) => assert.equal(Object.keys(b.errors as object), ['__proto__']) },
    { body: '{"__proto__": {"docker_image": "nginx"}}', expect: (b) => assert.equal(b.missing_parameters, ['docker_image']) },
    {
      body: { docker_image: 'nginx', constructor: 0, toString: 'x' },
      expect: (b) => assert.equal(Object.keys(b.errors as object).sort(), ['constructor', 'toString']),
    },
  ];
  const before = await snapshot();
  for (const c of cases) {
    const name = uniqueName('bad');
    const r = await req('POST', `/api/v2/apps/${name}`, { body: c.body, headers: { 'content-type': 'application/json' } });
    assert.is(r.status, 400, `${JSON.stringify(c.body)} -> ${r.status} ${r.text}`);
    try {
      c.expect(r.body as Record<string, unknown>);
    } catch (err) {
      throw new Error(`${JSON.stringify(c.body)} -> ${r.text}`, { cause: err });
    }
  }
  assert.is(await snapshot(), before);
});

test('names with dots, spaces, wildcards, slashes, unicode: 4xx JSON, nothing stored', async () => {
  const before = await snapshot();
  const names = ['a.b', 'a%20b', 'a*', 'a%3E', '%3E', 'a%2Fb', 'caf%C3%A9', '-lead', '_lead', 'x'.repeat(64), '%E0%A4%A'];
  for (const n of names) {
    const r = await req('POST', `/api/v2/apps/${n}`, { body: { docker_image: 'nginx' } });
    assert.ok(r.status >= 400 && r.status < 500, `${n}: ${r.status}`);
    if (r.status === 400) assert.ok('errors' in (r.body as object), `${n}: ${r.text}`);
    const g = await req('GET', `/api/v2/apps/${n}`);
    assert.ok(g.status >= 400 && g.status < 500, `GET ${n}: ${g.status}`);
  }
  const slash = await req('POST', '/api/v2/apps/a/b', { body: { docker_image: 'nginx' } });
  assert.is(slash.status, 404);
  const deep = await req('POST', '/api/v2/apps/a/b/c/d', { body: { docker_image: 'nginx' } });
  assert.is(deep.status, 404);
  assert.is(await snapshot(), before);
});

test('update with bad input: 400, stored state unchanged', async () => {
  const name = uniqueName();
  await create(name, { docker_image: 'nginx', starting_ports: [8080] });
  const before = await snapshot();
  const cases: Array<[string, string | object, (b: Record<string, unknown>) => void]> = [
    ['POST', {}, (b) => assert.equal(b.missing_parameters, ['docker_image'])],
    ['POST', 'nope', (b) => assert.equal(b.missing_parameters, ['docker_image'])],
    ['POST', { docker_image: 'nginx', starting_ports: [70000] }, (b) => assert.ok('starting_ports.0' in (b.errors as object))],
    ['PUT', '', (b) => assert.is(b.missing_parameters, true)],
    ['PATCH', '{bad', (b) => assert.is(b.missing_parameters, true)],
    ['PUT', {}, (b) => assert.is(b.missing_parameters, true)],
    ['PATCH', { app_name: name }, (b) => assert.is(b.missing_parameters, true)],
    ['PUT', { bogus: 1 }, (b) => assert.ok('bogus' in (b.errors as object))],
    ['PATCH', { running: 'no' }, (b) => assert.ok('running' in (b.errors as object))],
    ['PATCH', { starting_ports: [8080, 8080] }, (b) => assert.match(JSON.stringify(b.errors), /used twice/)],
    ['PATCH', { containers_per: { server: 2 }, starting_ports: [8080, 8081] }, (b) => assert.match(JSON.stringify(b.errors), /two containers/)],
  ];
  for (const [method, body, expect] of cases) {
    const r = await req(method, `/api/v2/apps/${name}/update`, { body, headers: { 'content-type': 'application/json' } });
    assert.is(r.status, 400, `${method} ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
    expect(r.body as Record<string, unknown>);
  }
  assert.is(await snapshot(), before);
});

test('oversized body: 413 JSON, nothing stored', async () => {
  const before = await snapshot();
  const big = { docker_image: 'nginx', labels: { big: 'x'.repeat(MAX_BODY) } };
  const r = await req('POST', `/api/v2/apps/${uniqueName()}`, { body: big });
  assert.is(r.status, 413);
  assert.ok('error' in (r.body as object));
  const t = await req('POST', '/trpc/apps.create', { body: { name: uniqueName(), ...big } });
  assert.is(t.status, 413);
  assert.is(await snapshot(), before);
});

test('unknown paths 404, wrong methods 405: JSON', async () => {
  for (const [method, path, status] of [
    ['GET', '/nope', 404],
    ['GET', '/api/v2/nope', 404],
    ['GET', '/api/v3/apps', 404],
    ['PUT', '/api/v2/apps', 405],
    ['DELETE', '/api/v2/status', 405],
    ['GET', '/api/v2/apps/x/stop', 405],
    ['GET', '/api/v2/apps/x/roll', 405],
    ['POST', '/api/v2/hosts', 405],
    ['DELETE', '/api/v2/hosts/x', 405],
    ['POST', '/api/v2/apps/x/rollouts', 405],
    ['GET', '/api/v2/hosts/x/y', 404],
    ['POST', '/openapi.json', 405],
    ['GET', '/trpc/nope.nothing', 404],
    ['GET', '/trpc/apps.create', 405],
    // Sent as JSON (as every change must be), a PUT to a query is a wrong method.
    ['PUT', '/trpc/apps.get', 405],
  ] as const) {
    const r = await req(method, path);
    assert.is(r.status, status, `${method} ${path}: ${r.text}`);
  }
});

test('ours: roll, pull, rollback (202), history, rollouts; errors keep the x_exists convention', async () => {
  const name = uniqueName();
  await create(name, { docker_image: 'nginx:1' });
  const roll = await req('POST', `/api/v2/apps/${name}/roll`);
  assert.is(roll.status, 202, roll.text);
  assert.is((roll.body as { app_id: number }).app_id, 2);
  const pull = await req('POST', `/api/v2/apps/${name}/pull`, { headers: { 'content-type': 'application/json' } });
  assert.is(pull.status, 202, pull.text);
  await req('PATCH', `/api/v2/apps/${name}/update`, { body: { docker_image: 'nginx:2' } });
  const back = await req('POST', `/api/v2/apps/${name}/rollback`, { body: { revision: 1 } });
  assert.is(back.status, 202, back.text);
  assert.is((back.body as { docker_image: string }).docker_image, 'nginx:1');
  assert.is(back.headers.get('x-nebula-rollout-id'), (back.body as { rollout_id: string }).rollout_id);
  const none = await req('POST', `/api/v2/apps/${name}/rollback`, { body: { revision: 42 } });
  assert.is(none.status, 403);
  assert.is((none.body as { revision_exists: boolean }).revision_exists, false);
  const badRev = await req('POST', `/api/v2/apps/${name}/rollback`, { body: { revision: 'one' } });
  assert.is(badRev.status, 400);
  assert.ok('revision' in (badRev.body as { errors: object }).errors);
  for (const revision of ['1', true, 1.5, 0]) {
    const r = await req('POST', `/api/v2/apps/${name}/rollback`, { body: { revision } });
    assert.is(r.status, 400, `${JSON.stringify(revision)}: ${r.text}`);
  }
  const malformed = await req('POST', `/api/v2/apps/${name}/rollback`, { body: '{' });
  assert.is(malformed.status, 400);
  const hist = await req('GET', `/api/v2/apps/${name}/history?limit=2`);
  assert.is(hist.status, 200);
  const revs = (hist.body as { revisions: Array<{ app_id: number; action: string; actor: string }> }).revisions;
  assert.equal(
    revs.map((r) => [r.app_id, r.action, r.actor]),
    [
      [5, 'rollback', 'admin'],
      [4, 'update', 'admin'],
    ],
  );
  const badLimit = await req('GET', `/api/v2/apps/${name}/history?limit=0`);
  assert.is(badLimit.status, 400);
  const missing = await req('POST', `/api/v2/apps/${uniqueName('missing')}/roll`);
  assert.is(missing.status, 403);
  assert.is((missing.body as { app_exists: boolean }).app_exists, false);
  const ro = await req('GET', `/api/v2/rollouts/${(back.body as { rollout_id: string }).rollout_id}`);
  assert.is(ro.status, 200);
  assert.equal([(ro.body as { revision: number }).revision, (ro.body as { action: string }).action], [5, 'rollback']);
  const roMissing = await req('GET', '/api/v2/rollouts/00000000-0000-4000-8000-000000000000');
  assert.is(roMissing.status, 403);
  const roBad = await req('GET', '/api/v2/rollouts/not-a-uuid');
  assert.is(roBad.status, 400);
});

test('rollouts and hosts: GET routes with query parameters; 4xx JSON for bad ids, unknown rollouts and hosts', async () => {
  const name = uniqueName();
  const tag = uniqueName('h');
  const at = (s: number) => new Date(Date.now() - s * 1000);
  const hb = (id: string, last: Date) => ({
    id,
    apps: [name],
    running: '[]',
    cores: 2,
    memory_mb: 512,
    worker_version: 'v',
    heartbeat_interval_seconds: 5,
    last_seen: last,
  });
  await env.db
    .insertInto('hosts')
    .values([hb(`${tag}-1`, at(1)), hb(`${tag}-2`, at(1)), hb(`${tag}-3`, at(600))])
    .execute();
  const doc = await create(name);
  const id = doc.rollout_id as string;
  await env.db
    .insertInto('rollout_hosts')
    .values({
      rollout_id: id,
      host: `${tag}-1`,
      status: 'failed',
      error: 'image not found',
      containers: '[]',
      pull_ms: 3,
      apply_ms: 0,
      reported_at: new Date(),
    })
    .execute();

  const ro = await req('GET', `/api/v2/rollouts/${id}`);
  assert.is(ro.status, 200, ro.text);
  const p = ro.body as {
    expected: number;
    failed: number;
    pending: number;
    complete: boolean;
    failures: Array<{ host: string; error: string }>;
    hosts: unknown[];
  };
  assert.equal([p.expected, p.failed, p.pending, p.complete], [2, 1, 1, false]);
  assert.equal(
    p.failures.map((f) => [f.host, f.error]),
    [[`${tag}-1`, 'image not found']],
  );
  const pendingOnly = await req('GET', `/api/v2/rollouts/${id}?host_state=pending&hosts_limit=5`);
  assert.equal(
    (pendingOnly.body as { hosts: Array<{ host: string }> }).hosts.map((h) => h.host),
    [`${tag}-2`],
  );

  const list = await req('GET', `/api/v2/apps/${name}/rollouts?limit=1`);
  assert.is(list.status, 200, list.text);
  assert.equal(
    (list.body as { rollouts: Array<{ id: string }> }).rollouts.map((r) => r.id),
    [id],
  );

  const hosts = await req('GET', `/api/v2/hosts?app=${name}`);
  assert.is(hosts.status, 200, hosts.text);
  assert.equal(
    (hosts.body as { hosts: Array<{ id: string; status: string }> }).hosts.map((h) => [h.id, h.status]),
    [
      [`${tag}-1`, 'online'],
      [`${tag}-2`, 'online'],
      [`${tag}-3`, 'offline'],
    ],
  );
  const offline = await req('GET', `/api/v2/hosts?app=${name}&status=offline&limit=10`);
  assert.equal(
    (offline.body as { hosts: Array<{ id: string }> }).hosts.map((h) => h.id),
    [`${tag}-3`],
  );
  const one = await req('GET', `/api/v2/hosts/${tag}-2`);
  assert.is(one.status, 200, one.text);
  assert.is((one.body as { memory_mb: number }).memory_mb, 512);

  for (const [path, status, key] of [
    ['/api/v2/rollouts/00000000-0000-4000-8000-000000000000', 403, 'rollout_exists'],
    ['/api/v2/rollouts/not-a-uuid', 400, 'errors'],
    [`/api/v2/rollouts/${id}?host_state=sleeping`, 400, 'errors'],
    [`/api/v2/rollouts/${id}?hosts_limit=0`, 400, 'errors'],
    [`/api/v2/hosts/${tag}-nope`, 403, 'host_exists'],
    ['/api/v2/hosts/bad.host', 400, 'errors'],
    ['/api/v2/hosts?status=asleep', 400, 'errors'],
    ['/api/v2/hosts?limit=abc', 400, 'errors'],
    ['/api/v2/hosts?bogus=1', 400, 'errors'],
    [`/api/v2/apps/${uniqueName('missing')}/rollouts`, 403, 'app_exists'],
    [`/api/v2/apps/${name}/rollouts?before=nope`, 400, 'errors'],
  ] as const) {
    const r = await req('GET', path);
    assert.is(r.status, status, `${path}: ${r.text}`);
    assert.ok(key in (r.body as object), `${path}: ${r.text}`);
    assert.type((r.body as { message?: unknown }).message, 'string', `${path}: ${r.text}`);
  }
});

test('/openapi.json documents every REST route', async () => {
  const r = await req('GET', '/openapi.json');
  assert.is(r.status, 200);
  const doc = r.body as { openapi: string; paths: Record<string, Record<string, unknown>> };
  assert.match(doc.openapi, /^3\./);
  for (const [path, methods] of Object.entries({
    '/api/v2/status': ['get'],
    '/api/v2/apps': ['get'],
    '/api/v2/apps/{name}': ['get', 'post', 'delete'],
    '/api/v2/apps/{name}/update': ['post', 'put', 'patch'],
    '/api/v2/apps/{name}/rollback': ['post'],
    '/api/v2/apps/{name}/history': ['get'],
    '/api/v2/rollouts/{id}': ['get'],
    '/api/v2/apps/{name}/rollouts': ['get'],
    '/api/v2/hosts': ['get'],
    '/api/v2/hosts/{id}': ['get'],
    '/api/v2/reports': ['get'],
    '/api/v2/rollouts/{id}/pause': ['post'],
    '/api/v2/users': ['get'],
    '/api/v2/cron_jobs': ['get'],
  })) {
    for (const m of methods) assert.ok(doc.paths[path]?.[m], `${m} ${path}`);
  }
});

test('tRPC over HTTP: errors are JSON without stack traces, with the compat body', async () => {
  const r = await req('GET', `/trpc/apps.get?input=${encodeURIComponent(JSON.stringify({ name: uniqueName('missing') }))}`);
  assert.is(r.status, 403);
  const err = (r.body as { error: Record<string, unknown> }).error;
  assert.is(err.app_exists, false);
  assert.not.ok(JSON.stringify(err).includes('stack'));
  const bad = await req('POST', '/trpc/apps.create', { body: { name: 'a.b', docker_image: 'nginx', extra: 1 } });
  assert.is(bad.status, 400);
  const e2 = (bad.body as { error: { errors: Record<string, string[]> } }).error;
  assert.equal(Object.keys(e2.errors).sort(), ['extra', 'name']);
  const malformed = await req('POST', '/trpc/apps.create', { body: '{"name":' });
  assert.is(malformed.status, 400);
  const proto = await req('POST', '/trpc/apps.create', { body: `{"name": "${uniqueName()}", "docker_image": "nginx", "__proto__": 1, "constructor": 2}` });
  assert.is(proto.status, 400, proto.text);
  assert.equal(Object.keys((proto.body as { error: { errors: object } }).error.errors).sort(), ['__proto__', 'constructor']);
});

test('inputs stay strict after the generated routes ran (no coercion leaks into shared schemas)', async () => {
  const name = uniqueName();
  const r = await req('POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx', running: 'true', privileged: 1, memory_limit_mb: '64' } });
  assert.is(r.status, 400);
  assert.equal(Object.keys((r.body as { errors: object }).errors).sort(), ['memory_limit_mb', 'privileged', 'running']);
});

test('errors name the field inside unions (env_vars, ports)', async () => {
  const r = await req('POST', `/api/v2/apps/${uniqueName()}`, {
    body: { docker_image: 'nginx', env_vars: { 'A B': '1' }, starting_ports: [{ '80': 'http' }] },
  });
  assert.is(r.status, 400);
  const errors = (r.body as { errors: Record<string, string[]> }).errors;
  assert.match(JSON.stringify(errors), /invalid environment variable name/);
  assert.ok(
    Object.keys(errors).some((k) => k.startsWith('starting_ports.0')),
    JSON.stringify(errors),
  );
});

test('unexpected failures: 500 JSON without internals, on every kind of route', async () => {
  const broken = await env.startApi({ ownDb: true });
  await broken.db.destroy(); // every query now fails
  for (const [method, path, body] of [
    ['GET', '/api/v2/apps', undefined],
    ['POST', `/api/v2/apps/${uniqueName()}`, { docker_image: 'nginx' }],
    ['POST', `/api/v2/apps/${uniqueName()}/roll`, undefined],
    ['GET', '/trpc/apps.list', undefined],
  ] as const) {
    const r = await http(broken.url, method, path, body ? { body } : {});
    assert.is(r.status, 500, `${method} ${path}: ${r.text}`);
    assert.not.match(r.text, /destroyed|kysely|driver/i);
  }
});

test.run();
