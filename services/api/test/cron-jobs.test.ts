import { createNebulaClient, httpStatusOf, nebulaErrorBody } from '@nebula/client';
import { sql } from '@nebula/db';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { basicHeader, type HttpResult, http, startEnv, type TestEnv, TOKEN, uniqueName } from './helpers.ts';

/**
 * Cron jobs over the real API (PostgreSQL, NATS, security on): the original's routes, codes and
 * bodies; bad input always a 4xx JSON with nothing stored; who may read, change and delete a job;
 * the runs listing; tRPC and the OpenAPI document.
 */
const test = suite('cron-jobs');
let env: TestEnv;
let api: ApiServer;

const req = (method: string, path: string, opts: Parameters<typeof http>[3] = {}): Promise<HttpResult> => http(api.url, method, path, opts);
const PASSWORDS = { viewer: 'viewer-password-1', deployer: 'deployer-password-1', stranger: 'stranger-password-1' };
const as = (user: keyof typeof PASSWORDS) => basicHeader(user, PASSWORDS[user]);

async function stored(): Promise<string> {
  const jobs = await env.db.selectFrom('cron_jobs').selectAll().orderBy('incarnation').execute();
  return JSON.stringify(jobs);
}

test.before(async () => {
  env = await startEnv();
  api = await env.startApi();
  for (const u of Object.keys(PASSWORDS) as Array<keyof typeof PASSWORDS>) {
    assert.is((await req('POST', `/api/v2/users/${u}`, { body: { password: PASSWORDS[u] } })).status, 200);
  }
  await req('POST', '/api/v2/user_groups/viewers', { body: { group_members: ['viewer'], cron_jobs: { nightly: 'ro' } } });
  await req('POST', '/api/v2/user_groups/deployers', {
    body: { group_members: ['deployer'], cron_jobs: { nightly: 'rw', fresh: 'rw', boxed: 'rw' }, apps: { nightly: 'rw' } },
  });
});
test.after(async () => env.close());

test('the original routes: create 200 with defaults, exists 403, list, get, POST update 202 (+cron_job_id, env []), PATCH/PUT 202 merged, delete 200 {}', async () => {
  const name = uniqueName('cron');
  const created = await req('POST', `/api/v2/cron_jobs/${name}`, { body: { docker_image: 'busybox:1.36', schedule: '*/5 * * * *', env_vars: { A: '1' } } });
  assert.is(created.status, 200, created.text);
  const doc = created.body as Record<string, unknown>;
  assert.equal(
    { ...doc, created_at: undefined, updated_at: undefined },
    {
      cron_job_name: name,
      cron_job_id: 1,
      docker_image: 'busybox:1.36',
      schedule: '*/5 * * * *',
      env_vars: { A: '1' },
      running: true,
      networks: ['nebula', 'bridge'],
      volumes: [],
      devices: [],
      privileged: false,
      timezone: 'UTC',
      timeout_seconds: 3600,
      created_at: undefined,
      updated_at: undefined,
    },
  );
  assert.not.ok('_id' in doc);
  const again = await req('POST', `/api/v2/cron_jobs/${name}`, { body: { docker_image: 'busybox', schedule: '* * * * *' } });
  assert.is(again.status, 403);
  assert.equal(again.body, { cron_job_exists: true });
  assert.ok(((await req('GET', '/api/v2/cron_jobs')).body as { cron_jobs: string[] }).cron_jobs.includes(name));
  assert.equal((await req('GET', `/api/v2/cron_jobs/${name}`)).body, doc);

  const full = await req('POST', `/api/v2/cron_jobs/${name}/update`, { body: { docker_image: 'busybox:1.37', schedule: '0 3 * * *', cron_job_name: name } });
  assert.is(full.status, 202, full.text);
  const afterFull = full.body as Record<string, unknown>;
  assert.is(afterFull.cron_job_id, 2);
  assert.equal(afterFull.env_vars, [], "POST update resets env_vars to the original's []");
  assert.is(afterFull.docker_image, 'busybox:1.37');

  const patched = await req('PATCH', `/api/v2/cron_jobs/${name}/update`, { body: { running: false, timezone: 'Europe/Paris' } });
  assert.is(patched.status, 202, patched.text);
  assert.equal(
    [
      (patched.body as Record<string, unknown>).cron_job_id,
      (patched.body as Record<string, unknown>).running,
      (patched.body as Record<string, unknown>).schedule,
    ],
    [3, false, '0 3 * * *'],
  );
  const put = await req('PUT', `/api/v2/cron_jobs/${name}/update`, { body: { schedule: '0 0 * * * *' } });
  assert.is(put.status, 202);
  assert.equal([(put.body as Record<string, unknown>).cron_job_id, (put.body as Record<string, unknown>).timezone], [4, 'Europe/Paris']);

  assert.equal((await req('DELETE', `/api/v2/cron_jobs/${name}`)).body, {});
  for (const [method, path, body] of [
    ['GET', `/api/v2/cron_jobs/${name}`, undefined],
    ['DELETE', `/api/v2/cron_jobs/${name}`, undefined],
    ['POST', `/api/v2/cron_jobs/${name}/update`, { docker_image: 'busybox', schedule: '* * * * *' }],
    ['PATCH', `/api/v2/cron_jobs/${name}/update`, { running: true }],
    ['GET', `/api/v2/cron_jobs/${name}/runs`, undefined],
  ] as const) {
    const r = await req(method, path, { body });
    assert.is(r.status, 403, `${method} ${path}`);
    assert.equal(r.body, { cron_job_exists: false }, `${method} ${path}`);
  }
  assert.not.ok(((await req('GET', '/api/v2/cron_jobs')).body as { cron_jobs: string[] }).cron_jobs.includes(name));
  // Made again: its id starts above the deleted job's, so a worker that remembers 4 sees a newer job.
  const remade = await req('POST', `/api/v2/cron_jobs/${name}`, { body: { docker_image: 'busybox', schedule: '@hourly' } });
  assert.is(remade.status, 200);
  assert.is((remade.body as { cron_job_id: number }).cron_job_id, 5);
});

test('bad input: always a 4xx JSON body in the original shapes, and nothing stored', async () => {
  const name = uniqueName('cron');
  assert.is((await req('POST', `/api/v2/cron_jobs/${name}`, { body: { docker_image: 'busybox', schedule: '* * * * *' } })).status, 200);
  const before = await stored();
  const cases: Array<[string, string, string | object | undefined, number, Record<string, unknown>]> = [
    ['POST', `/api/v2/cron_jobs/${name}-b`, { schedule: '* * * * *' }, 400, { missing_parameters: ['docker_image'] }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox' }, 400, { missing_parameters: ['schedule'] }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, {}, 400, { missing_parameters: ['docker_image', 'schedule'] }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, undefined, 400, { missing_parameters: ['docker_image', 'schedule'] }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, '{"docker_image":', 400, { missing_parameters: ['docker_image', 'schedule'] }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, '[1]', 400, { missing_parameters: ['docker_image', 'schedule'] }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: '61 * * * *' }, 400, { schedule_valid: false }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: 'every day' }, 400, { schedule_valid: false }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: 42 }, 400, { schedule_valid: false }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: '0 0 30 2 *' }, 400, { schedule_valid: false }],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: '* * * * *', timezone: 'Mars/Base' }, 400, {}],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: '* * * * *', timeout_seconds: -1 }, 400, {}],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: '* * * * *', starting_ports: [80] }, 400, {}],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'Bad Image!', schedule: '* * * * *' }, 400, {}],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: '* * * * *', networks: ['host', 'bridge'] }, 400, {}],
    ['POST', `/api/v2/cron_jobs/${name}-b`, { docker_image: 'busybox', schedule: '* * * * *', cron_job_name: 'other' }, 400, {}],
    ['POST', '/api/v2/cron_jobs/bad.name', { docker_image: 'busybox', schedule: '* * * * *' }, 400, {}],
    ['POST', `/api/v2/cron_jobs/${name}`, { docker_image: 'busybox', schedule: '* * * * *' }, 403, { cron_job_exists: true }],
    ['PATCH', `/api/v2/cron_jobs/${name}/update`, {}, 400, { missing_parameters: true }],
    ['PUT', `/api/v2/cron_jobs/${name}/update`, undefined, 400, { missing_parameters: true }],
    ['PATCH', `/api/v2/cron_jobs/${name}/update`, { schedule: '* * *' }, 400, { schedule_valid: false }],
    ['PATCH', `/api/v2/cron_jobs/${name}/update`, { running: 'yes' }, 400, {}],
    ['PATCH', `/api/v2/cron_jobs/${name}/update`, { cron_job_id: 99 }, 400, {}],
    ['POST', `/api/v2/cron_jobs/${name}/update`, { docker_image: 'busybox' }, 400, { missing_parameters: ['schedule'] }],
    ['POST', `/api/v2/cron_jobs/${name}/update`, { docker_image: 'busybox', schedule: '* * * * * * *' }, 400, { schedule_valid: false }],
    ['GET', `/api/v2/cron_jobs/${name}/runs?limit=abc`, undefined, 400, {}],
    ['GET', `/api/v2/cron_jobs/${name}/runs?limit=0`, undefined, 400, {}],
    ['GET', `/api/v2/cron_jobs/${name}/nothing`, undefined, 404, {}],
    ['DELETE', `/api/v2/cron_jobs/${name}/update`, undefined, 405, {}],
  ];
  for (const [method, path, body, status, expected] of cases) {
    const r = await req(method, path, { body });
    const label = `${method} ${path} ${JSON.stringify(body)}: ${r.text}`;
    assert.is(r.status, status, label);
    for (const [k, v] of Object.entries(expected)) assert.equal((r.body as Record<string, unknown>)[k], v, label);
    if (status === 400) assert.type((r.body as { errors?: unknown }).errors, 'object', label);
  }
  assert.is(await stored(), before, 'nothing stored or changed');
});

test('rights: lists need a login; "ro" reads (env hidden) and lists runs; "rw" changes; privileged needs privileged_allowed; delete needs admin', async () => {
  await req('DELETE', '/api/v2/cron_jobs/nightly');
  assert.is((await req('POST', '/api/v2/cron_jobs/nightly', { body: { docker_image: 'busybox', schedule: '0 2 * * *', env_vars: { KEY: 'v' } } })).status, 200);
  const before = await stored();

  assert.is((await req('GET', '/api/v2/cron_jobs', { auth: null })).status, 401);
  assert.is((await req('GET', '/api/v2/cron_jobs/nightly', { auth: null })).status, 401);
  assert.ok(((await req('GET', '/api/v2/cron_jobs', { auth: as('stranger') })).body as { cron_jobs: string[] }).cron_jobs.includes('nightly'));
  for (const path of ['/api/v2/cron_jobs/nightly', '/api/v2/cron_jobs/nightly/runs', '/api/v2/cron_jobs/no-such-job']) {
    const r = await req('GET', path, { auth: as('stranger') });
    assert.is(r.status, 403, path);
    assert.equal(r.body, { access_allowed: false }, `${path}: refused before the lookup, so it does not say whether the job exists`);
  }

  const seen = await req('GET', '/api/v2/cron_jobs/nightly', { auth: as('viewer') });
  assert.is(seen.status, 200);
  assert.equal((seen.body as { env_vars: unknown }).env_vars, { KEY: '(hidden)' });
  assert.is((await req('GET', '/api/v2/cron_jobs/nightly/runs', { auth: as('viewer') })).status, 200);
  for (const [method, path, body] of [
    ['POST', '/api/v2/cron_jobs/nightly/update', { docker_image: 'busybox', schedule: '* * * * *' }],
    ['PATCH', '/api/v2/cron_jobs/nightly/update', { running: false }],
    ['PUT', '/api/v2/cron_jobs/nightly/update', { running: false }],
    ['DELETE', '/api/v2/cron_jobs/nightly', undefined],
    ['POST', '/api/v2/cron_jobs/viewer-made', { docker_image: 'busybox', schedule: '* * * * *' }],
  ] as const) {
    const r = await req(method, path, { auth: as('viewer'), body });
    assert.is(r.status, 403, `${method} ${path}`);
    assert.is((r.body as { access_allowed?: unknown }).access_allowed, false, `${method} ${path}`);
  }
  assert.is(await stored(), before, 'the viewer changed nothing');

  // "rw": reads with env values, changes; but never deletes (admins only, as in the original).
  assert.equal(((await req('GET', '/api/v2/cron_jobs/nightly', { auth: as('deployer') })).body as { env_vars: unknown }).env_vars, { KEY: 'v' });
  const changed = await req('PATCH', '/api/v2/cron_jobs/nightly/update', { auth: as('deployer'), body: { schedule: '0 4 * * *' } });
  assert.is(changed.status, 202, changed.text);
  const del = await req('DELETE', '/api/v2/cron_jobs/nightly', { auth: as('deployer') });
  assert.is(del.status, 403);
  assert.equal(del.body, { access_allowed: false });

  // Privileged fields need privileged_allowed, on create and on the result of an update.
  for (const extra of [{ privileged: true }, { devices: ['/dev/fuse'] }, { networks: ['host'] }, { volumes: ['/etc:/host-etc:ro'] }]) {
    const r = await req('POST', '/api/v2/cron_jobs/fresh', { auth: as('deployer'), body: { docker_image: 'busybox', schedule: '* * * * *', ...extra } });
    assert.is(r.status, 403, JSON.stringify(extra));
    assert.equal((r.body as { privileged_fields: string[] }).privileged_fields, Object.keys(extra));
    const p = await req('PATCH', '/api/v2/cron_jobs/nightly/update', { auth: as('deployer'), body: extra });
    assert.is(p.status, 403, JSON.stringify(extra));
  }
  assert.is((await req('GET', '/api/v2/cron_jobs/fresh')).status, 403, 'not made');
  assert.is((await req('POST', '/api/v2/cron_jobs/boxed', { body: { docker_image: 'busybox', schedule: '* * * * *', privileged: true } })).status, 200);
  const reimage = await req('PATCH', '/api/v2/cron_jobs/boxed/update', { auth: as('deployer'), body: { docker_image: 'evil/box' } });
  assert.is(reimage.status, 403, 'a deployer cannot re-image a privileged job an admin set up');
  assert.is(((await req('GET', '/api/v2/cron_jobs/boxed')).body as { cron_job_id: number }).cron_job_id, 1);
  assert.is((await req('POST', '/api/v2/cron_jobs/fresh', { auth: as('deployer'), body: { docker_image: 'busybox', schedule: '* * * * *' } })).status, 200);
});

test('runs: an empty list at first, then newest first in the documented shape, limited', async () => {
  const name = uniqueName('cron');
  await req('POST', `/api/v2/cron_jobs/${name}`, { body: { docker_image: 'busybox', schedule: '*/10 * * * * *' } });
  assert.equal((await req('GET', `/api/v2/cron_jobs/${name}/runs`)).body, { cron_job_name: name, runs: [] });
  const job = await env.db.selectFrom('cron_jobs').select('incarnation').where('name', '=', name).where('deleted_at', 'is', null).executeTakeFirstOrThrow();
  await env.db
    .insertInto('cron_job_runs')
    .values([
      {
        incarnation: job.incarnation,
        cron_job_id: 1,
        host_id: 'h1',
        started_at: '2030-01-01T00:00:00Z',
        finished_at: '2030-01-01T00:00:02Z',
        exit_code: 0,
        log_tail: 'ok\n',
      },
      {
        incarnation: job.incarnation,
        cron_job_id: 1,
        host_id: 'h2',
        started_at: '2030-01-01T00:00:10Z',
        finished_at: '2030-01-01T01:00:10Z',
        exit_code: 137,
        timed_out: true,
      },
      { incarnation: job.incarnation, cron_job_id: 1, host_id: 'h1', started_at: '2030-01-01T00:00:20Z', error: 'image busybox:nope not found' },
    ])
    .execute();
  const runs = (await req('GET', `/api/v2/cron_jobs/${name}/runs`)).body as { runs: Array<Record<string, unknown>> };
  assert.equal(runs.runs, [
    {
      host_id: 'h1',
      cron_job_id: 1,
      started_at: '2030-01-01T00:00:20.000Z',
      finished_at: null,
      exit_code: null,
      timed_out: false,
      log_tail: null,
      error: 'image busybox:nope not found',
    },
    {
      host_id: 'h2',
      cron_job_id: 1,
      started_at: '2030-01-01T00:00:10.000Z',
      finished_at: '2030-01-01T01:00:10.000Z',
      exit_code: 137,
      timed_out: true,
      log_tail: null,
      error: null,
    },
    {
      host_id: 'h1',
      cron_job_id: 1,
      started_at: '2030-01-01T00:00:00.000Z',
      finished_at: '2030-01-01T00:00:02.000Z',
      exit_code: 0,
      timed_out: false,
      log_tail: 'ok\n',
      error: null,
    },
  ]);
  assert.is(((await req('GET', `/api/v2/cron_jobs/${name}/runs?limit=1`)).body as { runs: unknown[] }).runs.length, 1);
  // A job made again under the name starts with no runs (they belong to the deleted one).
  await req('DELETE', `/api/v2/cron_jobs/${name}`);
  await req('POST', `/api/v2/cron_jobs/${name}`, { body: { docker_image: 'busybox', schedule: '@daily' } });
  assert.equal(((await req('GET', `/api/v2/cron_jobs/${name}/runs`)).body as { runs: unknown[] }).runs, []);
  const kept = await sql<{ n: number }>`select count(*)::int as n from cron_job_runs where incarnation = ${job.incarnation}`.execute(env.db);
  assert.is(kept.rows[0]?.n, 3, "the deleted job's runs stay until retention");
});

test('tRPC (the typed client) serves the same procedures, with the compat bodies on refusals', async () => {
  const nebula = createNebulaClient({ url: `${api.url}/`, token: TOKEN });
  const name = uniqueName('cron');
  const doc = await nebula.cronJobs.create.mutate({ name, docker_image: 'busybox', schedule: '30 * * * * *', timeout_seconds: 60 });
  assert.is(doc.cron_job_id, 1);
  assert.is((await nebula.cronJobs.patch.mutate({ name, running: false })).cron_job_id, 2);
  assert.is((await nebula.cronJobs.get.query({ name })).running, false);
  assert.equal((await nebula.cronJobs.runs.query({ name })).runs, []);
  try {
    await nebula.cronJobs.create.mutate({ name: `${name}-x`, docker_image: 'busybox', schedule: '* * 32 * *' });
    assert.unreachable('bad schedule accepted');
  } catch (err) {
    assert.is(httpStatusOf(err), 400);
    assert.is(nebulaErrorBody(err)?.schedule_valid, false);
  }
  try {
    await nebula.cronJobs.get.query({ name: `${name}-x` });
    assert.unreachable('missing job found');
  } catch (err) {
    assert.is(httpStatusOf(err), 403);
    assert.is(nebulaErrorBody(err)?.cron_job_exists, false);
  }
  await nebula.cronJobs.delete.mutate({ name });
});

test('/openapi.json lists the cron job routes (PUT update too)', async () => {
  const doc = (await req('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
  assert.ok(doc.paths['/api/v2/cron_jobs']?.get);
  assert.ok(doc.paths['/api/v2/cron_jobs/{name}']?.get && doc.paths['/api/v2/cron_jobs/{name}']?.post && doc.paths['/api/v2/cron_jobs/{name}']?.delete);
  const update = doc.paths['/api/v2/cron_jobs/{name}/update'];
  assert.ok(update?.post && update?.patch && update?.put);
  assert.ok(doc.paths['/api/v2/cron_jobs/{name}/runs']?.get);
});

test.run();
