import { createNebulaClient, httpStatusOf, TRPCClientError } from '@nebula/client';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN, type ApiProcess, basicHeader, type HttpResult, http, spawnApi, startEnv, type TestEnv, TOKEN } from './helpers.ts';

/**
 * Users, user groups and per-app permissions, against the real entry point (main.ts as a process,
 * PostgreSQL and NATS): the original's routes, codes and bodies; what a read-only user, a deployer
 * and an admin may do; throttled logins; and, over everything this file sent and read, no
 * credential in any log line or response.
 */
const test = suite('users');
let env: TestEnv;
let api: ApiProcess;
/** Every response text, for the closing check; `refresh` answers are kept apart (they show a token on purpose). */
const answers: string[] = [];
const refreshAnswers: string[] = [];
/** Every secret this file uses. */
const secrets: string[] = [ADMIN.password, TOKEN];
const logOnly: string[] = [];

const PASSWORDS = { viewer: 'viewer-password-1', deployer: 'deployer-password-1', ops: 'ops-password-123', carol: 'carol-password-1' };
secrets.push(...Object.values(PASSWORDS));

async function call(method: string, path: string, opts: Parameters<typeof http>[3] = {}): Promise<HttpResult> {
  const r = await http(api.url, method, path, opts);
  (path.endsWith('/refresh') ? refreshAnswers : answers).push(r.text);
  return r;
}
const as = (user: keyof typeof PASSWORDS) => basicHeader(user, PASSWORDS[user]);

test.before(async () => {
  env = await startEnv();
  api = await spawnApi({
    DATABASE_URL: env.dbUrl,
    ...env.busVars,
    BASIC_AUTH_USER: ADMIN.user,
    BASIC_AUTH_PASSWORD: ADMIN.password,
    AUTH_TOKEN: TOKEN,
    LOG_LEVEL: 'debug',
  });
});
test.after(async () => {
  await api?.stop();
  await env.close();
});

test('users over REST in the original shapes: create 200, exists 403, missing 403, update 200, refresh 200 {token}, delete 200 {}', async () => {
  const created = await call('POST', '/api/v2/users/carol', { body: { password: PASSWORDS.carol } });
  assert.is(created.status, 200);
  const doc = created.body as Record<string, unknown>;
  assert.is(doc.user_name, 'carol');
  assert.is(doc.password_set, true);
  assert.is(doc.token_set, true, 'a random token is made');
  assert.equal(Object.keys(doc).sort(), ['created_at', 'password_set', 'token_set', 'updated_at', 'user_name']);
  assert.equal((await call('POST', '/api/v2/users/carol', { body: {} })).body, { user_exists: true });
  assert.is((await call('POST', '/api/v2/users/carol', { body: {} })).status, 403);
  assert.ok(((await call('GET', '/api/v2/users')).body as { users: string[] }).users.includes('carol'));
  assert.equal((await call('GET', '/api/v2/users/nobody')).body, { user_exists: false });
  assert.equal((await call('PUT', '/api/v2/users/nobody/update', { body: { password: 'long-enough-pw' } })).body, { user_name: false });
  assert.equal((await call('POST', '/api/v2/users/nobody/refresh')).body, { user_name: false });
  const empty = await call('PATCH', '/api/v2/users/carol/update', { body: {} });
  assert.is(empty.status, 400);
  assert.is((empty.body as { missing_parameters: unknown }).missing_parameters, true);
  const short = await call('POST', '/api/v2/users/dave', { body: { password: 'short' } });
  assert.is(short.status, 400);
  assert.match(JSON.stringify(short.body), /at least 12 characters/);
  assert.equal((await call('POST', `/api/v2/users/${ADMIN.user}`, { body: {} })).status, 400, "the local admin's name is taken");

  // The password works; refresh makes a token that works as bearer, and the password still does.
  assert.is((await call('GET', '/api/v2/status', { auth: as('carol') })).status, 200);
  const refreshed = await call('POST', '/api/v2/users/carol/refresh');
  assert.is(refreshed.status, 200);
  const { token } = refreshed.body as { token: string };
  secrets.push(token);
  assert.is((await call('GET', '/api/v2/status', { auth: `Bearer ${token}` })).status, 200);
  const again = (await call('POST', '/api/v2/users/carol/refresh')).body as { token: string };
  secrets.push(again.token);
  assert.is((await call('GET', '/api/v2/status', { auth: `Bearer ${token}` })).status, 401, 'the old token stops working');
  assert.is((await call('GET', '/api/v2/status', { auth: `Bearer ${again.token}` })).status, 200);

  const newPassword = 'carol-password-2';
  secrets.push(newPassword);
  assert.is((await call('PUT', '/api/v2/users/carol/update', { body: { password: newPassword } })).status, 200);
  assert.is((await call('GET', '/api/v2/status', { auth: as('carol') })).status, 401, 'the old password stops working at once');
  assert.is((await call('GET', '/api/v2/status', { auth: basicHeader('carol', newPassword) })).status, 200);

  assert.equal((await call('DELETE', '/api/v2/users/carol')).body, {});
  assert.equal((await call('DELETE', '/api/v2/users/carol')).body, { user_exists: false });
  assert.is((await call('GET', '/api/v2/status', { auth: `Bearer ${again.token}` })).status, 401, 'a deleted user is out at once');
});

test('user groups over REST: create 200 with defaults, exists 403, update 200, missing 403 (not 200 null), bad level 400, delete 200 {}', async () => {
  const g = await call('POST', '/api/v2/user_groups/readers', { body: { group_members: ['x'], apps: { web: 'ro' } } });
  assert.is(g.status, 200);
  assert.equal(g.body, {
    user_group: 'readers',
    group_members: ['x'],
    apps: { web: 'ro' },
    device_groups: {},
    cron_jobs: {},
    admin: false,
    pruning_allowed: false,
    privileged_allowed: false,
  });
  assert.equal((await call('POST', '/api/v2/user_groups/readers', { body: {} })).body, { user_group_exists: true });
  assert.ok(((await call('GET', '/api/v2/user_groups')).body as { user_groups: string[] }).user_groups.includes('readers'));
  const up = await call('PATCH', '/api/v2/user_groups/readers/update', { body: { apps: { web: 'rw', db: 'ro' }, pruning_allowed: true } });
  assert.is(up.status, 200);
  assert.equal((up.body as { apps: object }).apps, { web: 'rw', db: 'ro' });
  assert.equal((up.body as { group_members: string[] }).group_members, ['x'], 'fields not given stay');
  assert.equal((await call('PUT', '/api/v2/user_groups/nope/update', { body: { admin: true } })).body, { user_group_exists: false });
  assert.equal((await call('GET', '/api/v2/user_groups/nope')).body, { user_group_exists: false });
  const bad = await call('PATCH', '/api/v2/user_groups/readers/update', { body: { apps: { web: 'rx' } } });
  assert.is(bad.status, 400);
  assert.ok((bad.body as { errors: Record<string, unknown> }).errors['apps.web']);
  assert.equal((await call('DELETE', '/api/v2/user_groups/readers')).body, {});
  assert.equal((await call('DELETE', '/api/v2/user_groups/readers')).body, { user_group_exists: false });
});

test('users and groups through tRPC (the typed client)', async () => {
  const nebula = createNebulaClient({ url: `${api.url}/`, token: TOKEN });
  await nebula.users.create.mutate({ name: 'ops', password: PASSWORDS.ops });
  assert.is((await nebula.users.get.query({ name: 'ops' })).password_set, true);
  await nebula.userGroups.create.mutate({ name: 'ops-team', group_members: ['ops'], admin: true });
  assert.is((await nebula.userGroups.get.query({ name: 'ops-team' })).admin, true);
  // A member of an admin group is an admin: it may manage users.
  const ops = createNebulaClient({ url: `${api.url}/`, username: 'ops', password: PASSWORDS.ops });
  assert.ok((await ops.users.list.query()).users.includes('ops'));
  await nebula.userGroups.delete.mutate({ name: 'ops-team' });
  try {
    await ops.users.list.query();
    assert.unreachable('no longer an admin');
  } catch (err) {
    assert.instance(err, TRPCClientError);
    assert.is(httpStatusOf(err as never), 403);
  }
  await nebula.users.delete.mutate({ name: 'ops' });
});

/** Every route that changes something, with a body where it needs one. */
function writeRoutes(app: string): Array<[string, string, object | undefined]> {
  return [
    ['POST', `/api/v2/apps/${app}-new`, { docker_image: 'nginx:1' }],
    ['DELETE', `/api/v2/apps/${app}`, undefined],
    ['POST', `/api/v2/apps/${app}/stop`, undefined],
    ['POST', `/api/v2/apps/${app}/start`, undefined],
    ['POST', `/api/v2/apps/${app}/restart`, undefined],
    ['POST', `/api/v2/apps/${app}/roll`, undefined],
    ['POST', `/api/v2/apps/${app}/pull`, undefined],
    ['POST', `/api/v2/apps/${app}/rollback`, { revision: 1 }],
    ['POST', `/api/v2/apps/${app}/update`, { docker_image: 'nginx:2' }],
    ['PUT', `/api/v2/apps/${app}/update`, { docker_image: 'nginx:2' }],
    ['PATCH', `/api/v2/apps/${app}/update`, { docker_image: 'nginx:2' }],
    ['POST', '/api/v2/hosts/join_tokens', {}],
    ['DELETE', '/api/v2/hosts/join_tokens/00000000-0000-4000-8000-000000000000', undefined],
    ['POST', '/api/v2/hosts/h1/revoke', undefined],
    ['POST', '/api/v2/users/mallory', { password: 'mallory-password' }],
    ['PUT', '/api/v2/users/viewer/update', { password: 'another-password' }],
    ['POST', '/api/v2/users/viewer/refresh', undefined],
    ['DELETE', '/api/v2/users/viewer', undefined],
    ['POST', '/api/v2/user_groups/mine', { admin: true }],
    ['PATCH', '/api/v2/user_groups/viewers/update', { admin: true }],
    ['DELETE', '/api/v2/user_groups/viewers', undefined],
  ];
}

async function setUpTeam(): Promise<void> {
  for (const u of ['viewer', 'deployer'] as const) assert.is((await call('POST', `/api/v2/users/${u}`, { body: { password: PASSWORDS[u] } })).status, 200);
  await call('POST', '/api/v2/user_groups/viewers', { body: { group_members: ['viewer'], apps: { web: 'ro' } } });
  await call('POST', '/api/v2/user_groups/deployers', { body: { group_members: ['deployer'], apps: { web: 'rw', 'web-new': 'rw', priv: 'rw' } } });
  const web = await call('POST', '/api/v2/apps/web', { body: { docker_image: 'nginx:1', env_vars: { DB_PASSWORD: 's3cr3t-value' } } });
  assert.is(web.status, 200);
  // Shown to users with "rw" on the app by design: checked only against the log below.
  logOnly.push('s3cr3t-value');
}

test('a read-only user: every change and every write route refused with {"access_allowed": false}, nothing changed; reads without env values', async () => {
  await setUpTeam();
  const before = (await call('GET', '/api/v2/apps/web')).body as { app_id: number };
  for (const [method, path, body] of writeRoutes('web')) {
    const r = await call(method, path, { auth: as('viewer'), body });
    assert.is(r.status, 403, `${method} ${path}`);
    assert.is((r.body as { access_allowed?: unknown }).access_allowed, false, `${method} ${path}: ${r.text}`);
  }
  const viewer = createNebulaClient({ url: `${api.url}/`, username: 'viewer', password: PASSWORDS.viewer });
  for (const attempt of [
    () => viewer.apps.patch.mutate({ name: 'web', docker_image: 'nginx:3' }),
    () => viewer.apps.stop.mutate({ name: 'web' }),
    () => viewer.apps.delete.mutate({ name: 'web' }),
    () => viewer.hosts.joinTokens.create.mutate({}),
  ]) {
    try {
      await attempt();
      assert.unreachable('a read-only user changed something');
    } catch (err) {
      assert.is(httpStatusOf(err as never), 403);
    }
  }
  const after = (await call('GET', '/api/v2/apps/web')).body as { app_id: number };
  assert.is(after.app_id, before.app_id, 'no revision was made');
  assert.equal((await call('GET', '/api/v2/apps/web-new')).body, { app_exists: false });
  assert.is((await call('GET', '/api/v2/users/viewer')).status, 200, 'the viewer was not deleted');

  // Reads: the app with env names and hidden values, its history likewise; another app not at all.
  const seen = (await call('GET', '/api/v2/apps/web', { auth: as('viewer') })).body as { env_vars: Record<string, string>; docker_image: string };
  assert.is(seen.docker_image, 'nginx:1');
  assert.equal(seen.env_vars, { DB_PASSWORD: '(hidden)' });
  const history = await call('GET', '/api/v2/apps/web/history', { auth: as('viewer') });
  assert.is(history.status, 200);
  assert.not.ok(history.text.includes('s3cr3t-value'));
  assert.ok(history.text.includes('DB_PASSWORD'));
  assert.equal((await viewer.apps.get.query({ name: 'web' })).env_vars, { DB_PASSWORD: '(hidden)' });
  assert.equal((await call('GET', '/api/v2/apps/db', { auth: as('viewer') })).body, { access_allowed: false });
  assert.is((await call('GET', '/api/v2/apps', { auth: as('viewer') })).status, 200, 'lists need only a login, as in the original');
  // A user with "rw" sees the values.
  assert.equal(((await call('GET', '/api/v2/apps/web', { auth: as('deployer') })).body as { env_vars: object }).env_vars, { DB_PASSWORD: 's3cr3t-value' });
});

test('a deployer without privileged_allowed: privileged configs refused with a 403 naming the field, nothing stored; ordinary changes recorded as its own', async () => {
  const cases: Array<[object, string[]]> = [
    [{ privileged: true }, ['privileged']],
    [{ devices: ['/dev/ttyUSB0'] }, ['devices']],
    [{ networks: ['host'] }, ['networks']],
    [{ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }, ['volumes']],
  ];
  for (const [extra, fields] of cases) {
    const r = await call('POST', '/api/v2/apps/priv', { auth: as('deployer'), body: { docker_image: 'nginx:1', ...extra } });
    assert.is(r.status, 403, JSON.stringify(extra));
    assert.is((r.body as { access_allowed: boolean }).access_allowed, false);
    assert.equal((r.body as { privileged_fields: string[] }).privileged_fields, fields);
    const p = await call('PATCH', '/api/v2/apps/web/update', { auth: as('deployer'), body: extra });
    assert.is(p.status, 403);
    assert.equal((p.body as { privileged_fields: string[] }).privileged_fields, fields);
  }
  assert.equal((await call('GET', '/api/v2/apps/priv')).body, { app_exists: false }, 'nothing stored');
  assert.is(
    (await call('POST', '/api/v2/apps/priv', { auth: as('deployer'), body: { docker_image: 'nginx:1', volumes: ['data:/data'] } })).status,
    200,
    'a named volume is fine',
  );

  // An ordinary change by the deployer, recorded as its own.
  assert.is((await call('PATCH', '/api/v2/apps/web/update', { auth: as('deployer'), body: { docker_image: 'nginx:2' } })).status, 202);
  const h = (await call('GET', '/api/v2/apps/web/history')).body as { revisions: Array<{ actor: string; action: string }> };
  assert.equal(
    h.revisions.map((r) => r.actor),
    ['deployer', ADMIN.user],
  );

  // The admin makes web privileged: the deployer may stop and start it, but not change its config any more.
  assert.is((await call('PATCH', '/api/v2/apps/web/update', { body: { privileged: true } })).status, 202);
  const swap = await call('PATCH', '/api/v2/apps/web/update', { auth: as('deployer'), body: { docker_image: 'evil:1' } });
  assert.is(swap.status, 403);
  assert.equal((swap.body as { privileged_fields: string[] }).privileged_fields, ['privileged']);
  assert.is(
    (await call('POST', '/api/v2/apps/web/rollback', { auth: as('deployer'), body: { revision: 3 } })).status,
    403,
    'a rollback to a privileged revision too',
  );
  assert.is((await call('POST', '/api/v2/apps/web/stop', { auth: as('deployer') })).status, 202);
  assert.is(((await call('GET', '/api/v2/apps/web')).body as { docker_image: string }).docker_image, 'nginx:2');

  // With privileged_allowed, the same config is accepted.
  assert.is((await call('PATCH', '/api/v2/user_groups/deployers/update', { body: { privileged_allowed: true } })).status, 200);
  assert.is((await call('PATCH', '/api/v2/apps/web/update', { auth: as('deployer'), body: { docker_image: 'nginx:3' } })).status, 202);
});

test('no credential in any log line or response of this file', async () => {
  const out = api.output();
  assert.ok(out.length > 1000, 'the API logged at debug level');
  const forms = secrets.flatMap((s) => [s, Buffer.from(s).toString('base64')]);
  forms.push(...Object.entries(PASSWORDS).map(([u, p]) => Buffer.from(`${u}:${p}`).toString('base64')));
  for (const s of logOnly) assert.not.ok(out.includes(s), 'an env value is in the log');
  for (const s of forms) {
    assert.not.ok(out.includes(s), `a secret is in the log (${s.slice(0, 3)}...)`);
    for (const a of answers) assert.not.ok(a.includes(s), `a secret is in a response (${s.slice(0, 3)}...): ${a.slice(0, 120)}`);
  }
  // Nor any hash: the stored forms never leave the database.
  const stored = await env.db.selectFrom('users').select(['password_hash', 'token_hash']).execute();
  assert.ok(stored.length > 0);
  for (const row of stored) {
    for (const h of [row.password_hash, row.token_hash]) {
      if (h === null) continue;
      assert.not.ok(out.includes(h), 'a hash is in the log');
      for (const a of [...answers, ...refreshAnswers]) assert.not.ok(a.includes(h), 'a hash is in a response');
    }
  }
  assert.is(refreshAnswers.filter((a) => a.includes('"token"')).length, 2, 'refresh showed its token (the one place)');
});

test('failed logins are throttled per user and per source: 429 with Retry-After, even for the right password', async () => {
  const p = await spawnApi({
    DATABASE_URL: env.dbUrl,
    ...env.busVars,
    BASIC_AUTH_USER: ADMIN.user,
    BASIC_AUTH_PASSWORD: ADMIN.password,
    API_LOGIN_MAX_FAILURES_PER_USER_PER_MINUTE: '3',
    API_LOGIN_MAX_FAILURES_PER_MINUTE: '6',
  });
  try {
    const go = (auth: string | null) => http(p.url, 'GET', '/api/v2/status', { auth });
    for (let i = 0; i < 3; i++) assert.is((await go(basicHeader('deployer', `wrong-${i}`))).status, 401);
    const blocked = await go(as('deployer'));
    assert.is(blocked.status, 429, 'the right password, after too many wrong ones');
    assert.is((blocked.body as { error: string }).error, 'too many failed logins');
    assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
    assert.is((await go(as('viewer'))).status, 200, 'another user is not blocked by it');
    assert.is((await go(null)).status, 401, 'no credentials at all: not a failed login');
    // Three more wrong ones from this address (any names): the address is now blocked for everyone.
    for (const u of ['a1', 'a2', 'a3']) assert.is((await go(basicHeader(u, 'wrong-password'))).status, 401);
    assert.is((await go(as('viewer'))).status, 429);
    assert.is((await go(`Bearer ${TOKEN}x`)).status, 429);
  } finally {
    await p.stop();
  }
});

test.run();
