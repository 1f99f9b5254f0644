import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, startEnv, type TestEnv, TOKEN, uniqueName } from './helpers.ts';

/**
 * The original Python SDK (NebulaPythonSDK 2.8.0) against the real API: every one of its 34 methods,
 * sent as the SDK sends it (method, path, JSON body or none, `content-type: application/json` and
 * `cache-control: no-cache` on every call, bodyless POSTs, basic or bearer auth), checked for what the
 * SDK's callers rely on: the status code and the body, which must always be JSON (the SDK calls
 * `r.json()` on every answer, errors included), the `{"x_exists": false}` answers.
 */
const test = suite('sdk-compat');
let env: TestEnv;
let api: ApiServer;

type Auth = { username: string; password: string } | { token: string };
interface Reply {
  status_code: number;
  reply: Record<string, unknown>;
}

/** What `Nebula(...)._request` does: the headers, the body, and `{"status_code", "reply": r.json()}`. */
class Sdk {
  private readonly auth: Auth;
  constructor(auth: Auth) {
    this.auth = auth;
  }

  async call(method: string, path: string, body?: unknown, params?: Record<string, string | number | undefined>): Promise<Reply> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-cache' };
    headers.authorization =
      'token' in this.auth ? `Bearer ${this.auth.token}` : `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined) query.set(k, String(v));
    const qs = query.size > 0 ? `?${query}` : '';
    const res = await fetch(`${api.url}/api/v2${path}${qs}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    let reply: Record<string, unknown>;
    try {
      reply = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new Error(`${method} ${path}: ${res.status} is not JSON (the SDK would raise): ${text.slice(0, 200)}`);
    }
    return { status_code: res.status, reply };
  }

  // The SDK's methods, one to one (sdk.py), same names.
  check_api = () => this.call('GET', '/status');
  create_app = (app: string, config: object) => this.call('POST', `/apps/${app}`, config);
  delete_app = (app: string) => this.call('DELETE', `/apps/${app}`);
  list_apps = () => this.call('GET', '/apps');
  list_app_info = (app: string) => this.call('GET', `/apps/${app}`);
  stop_app = (app: string) => this.call('POST', `/apps/${app}/stop`);
  start_app = (app: string) => this.call('POST', `/apps/${app}/start`);
  restart_app = (app: string) => this.call('POST', `/apps/${app}/restart`);
  update_app = (app: string, config: object, force_all = false) => this.call(force_all ? 'POST' : 'PUT', `/apps/${app}/update`, config);
  prune_images = () => this.call('POST', '/prune');
  prune__device_group_images = (dg: string) => this.call('POST', `/device_groups/${dg}/prune`);
  list_device_group_info = (dg: string) => this.call('GET', `/device_groups/${dg}/info`);
  list_device_groups = () => this.call('GET', '/device_groups');
  list_device_group = (dg: string) => this.call('GET', `/device_groups/${dg}`);
  create_device_group = (dg: string, config: object) => this.call('POST', `/device_groups/${dg}`, config);
  delete_device_group = (dg: string) => this.call('DELETE', `/device_groups/${dg}`);
  update_device_group = (dg: string, config: object) => this.call('PUT', `/device_groups/${dg}/update`, config);
  list_reports = (
    o: {
      page_size?: number;
      hostname?: string;
      device_group?: string;
      report_creation_time_filter?: string;
      report_creation_time?: number;
      last_id?: string;
      updated?: string;
    } = {},
  ) => this.call('GET', '/reports', undefined, { page_size: 10, report_creation_time_filter: 'gt', ...o });
  list_users = () => this.call('GET', '/users');
  list_user = (u: string) => this.call('GET', `/users/${u}`);
  create_user = (u: string, config: object) => this.call('POST', `/users/${u}`, config);
  delete_user = (u: string) => this.call('DELETE', `/users/${u}`);
  update_user = (u: string, config: object) => this.call('PUT', `/users/${u}/update`, config);
  refresh_user_token = (u: string) => this.call('POST', `/users/${u}/refresh`);
  list_user_groups = () => this.call('GET', '/user_groups');
  list_user_group = (g: string) => this.call('GET', `/user_groups/${g}`);
  create_user_group = (g: string, config: object) => this.call('POST', `/user_groups/${g}`, config);
  delete_user_group = (g: string) => this.call('DELETE', `/user_groups/${g}`);
  update_user_group = (g: string, config: object) => this.call('PUT', `/user_groups/${g}/update`, config);
  list_cron_jobs = () => this.call('GET', '/cron_jobs');
  list_cron_job_info = (c: string) => this.call('GET', `/cron_jobs/${c}`);
  create_cron_job = (c: string, config: object) => this.call('POST', `/cron_jobs/${c}`, config);
  delete_cron_job = (c: string) => this.call('DELETE', `/cron_jobs/${c}`);
  update_cron_job = (c: string, config: object, force_all = false) => this.call(force_all ? 'POST' : 'PUT', `/cron_jobs/${c}/update`, config);
}

const SDK_METHODS = 34;
const called = new Set<string>();
let basic: Sdk;
let bearer: Sdk;

/** Counts the methods a test used, so the last test can check all 34 were. */
function tracked(sdk: Sdk): Sdk {
  return new Proxy(sdk, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v === 'function' && prop !== 'call' && typeof prop === 'string') called.add(prop);
      return v;
    },
  });
}

function is(r: Reply, status: number, what: string): Record<string, unknown> {
  assert.is(r.status_code, status, `${what}: ${JSON.stringify(r.reply)}`);
  return r.reply;
}

test.before(async () => {
  env = await startEnv();
  api = await env.startApi();
  basic = tracked(new Sdk({ username: ADMIN.user, password: ADMIN.password }));
  bearer = tracked(new Sdk({ token: TOKEN }));
});
test.after(async () => env.close());

test('check_api, with basic and bearer auth; no auth is a JSON 401', async () => {
  assert.equal(is(await basic.check_api(), 200, 'check_api'), { api_available: true });
  assert.equal(is(await bearer.check_api(), 200, 'check_api (token)'), { api_available: true });
  const anon = await new Sdk({ username: 'nobody', password: 'wrong-password-1' }).call('GET', '/status');
  assert.is(anon.status_code, 401);
});

test('apps: create 200, list, info, stop/start/restart 202 (bodyless), update PUT and POST (force_all) 202, delete 200 {}, missing 403', async () => {
  const app = uniqueName('app');
  const created = is(await basic.create_app(app, { docker_image: 'nginx', starting_ports: [80], containers_per: { server: 1 } }), 200, 'create_app');
  assert.equal([created.app_name, created.app_id, created.env_vars], [app, 1, {}]);
  assert.equal(is(await basic.create_app(app, { docker_image: 'nginx' }), 403, 'create_app again'), { app_exists: true });
  assert.ok((is(await bearer.list_apps(), 200, 'list_apps').apps as string[]).includes(app));
  assert.is(is(await basic.list_app_info(app), 200, 'list_app_info').docker_image, 'nginx');
  const stopped = is(await basic.stop_app(app), 202, 'stop_app');
  assert.equal([stopped.running, stopped.app_id], [false, 2]);
  assert.equal(is(await basic.restart_app(app), 403, 'restart_app stopped'), { running_before_restart: false });
  assert.equal([is(await basic.start_app(app), 202, 'start_app').running], [true]);
  assert.is(is(await basic.restart_app(app), 202, 'restart_app').app_id, 4);
  const put = is(await basic.update_app(app, { docker_image: 'nginx:1.27' }), 202, 'update_app');
  assert.equal([put.docker_image, put.starting_ports, put.app_id], ['nginx:1.27', [80], 5], 'PUT merges');
  const post = is(await basic.update_app(app, { docker_image: 'nginx:1.28', app_name: app }, true), 202, 'update_app force_all');
  assert.equal([post.docker_image, post.starting_ports, post.env_vars], ['nginx:1.28', [], []], 'POST replaces; env_vars [] as the SDK test pins');
  assert.equal(is(await basic.delete_app(app), 200, 'delete_app'), {});
  for (const r of [
    await basic.list_app_info(app),
    await basic.stop_app(app),
    await basic.delete_app(app),
    await basic.update_app(app, { docker_image: 'x' }),
  ]) {
    assert.equal(is(r, 403, 'a missing app'), { app_exists: false });
  }
  assert.equal(is(await basic.create_app(uniqueName('app'), {}), 400, 'create_app no image').missing_parameters, ['docker_image']);
});

test('device groups: create 200, list, get, info, update (PUT) 202, prune 202, prune_images 202, delete 200 {}, the x_exists answers', async () => {
  const [app, job, dg] = [uniqueName('app'), uniqueName('job'), uniqueName('dg')];
  is(await basic.create_app(app, { docker_image: 'nginx' }), 200, 'create_app');
  is(await basic.create_cron_job(job, { docker_image: 'busybox', schedule: '0 * * * *' }), 200, 'create_cron_job');
  const created = is(await basic.create_device_group(dg, { apps: [app], cron_jobs: [job] }), 200, 'create_device_group');
  assert.equal([created.device_group, created.device_group_id, created.prune_id, created.apps, created.cron_jobs], [dg, 1, 1, [app], [job]]);
  assert.equal(is(await basic.create_device_group(dg, { apps: [] }), 403, 'again'), { device_group_exists: true });
  assert.equal(is(await basic.create_device_group(uniqueName('dg'), { apps: [uniqueName('x')] }), 403, 'missing app'), { app_exists: false });
  assert.equal(is(await basic.create_device_group(uniqueName('dg'), { cron_jobs: [uniqueName('x')] }), 403, 'missing job'), { cron_job_exists: false });
  assert.is(is(await basic.create_device_group(uniqueName('dg'), { apps: app }), 400, 'not a list').apps_is_list, false);
  assert.ok((is(await bearer.list_device_groups(), 200, 'list_device_groups').device_groups as string[]).includes(dg));
  assert.equal(is(await basic.list_device_group(dg), 200, 'list_device_group').apps, [app]);
  // What the original worker polls: the apps and jobs in full, and the counters it compares.
  const info = is(await basic.list_device_group_info(dg), 200, 'list_device_group_info');
  assert.equal([info.apps_list, info.cron_jobs_list, info.device_group_id, info.prune_id], [[app], [job], 1, 1]);
  assert.equal([(info.apps as Array<{ app_name: string; app_id: number }>)[0]?.app_name, (info.apps as Array<{ app_id: number }>)[0]?.app_id], [app, 1]);
  assert.is((info.cron_jobs as Array<{ cron_job_name: string }>)[0]?.cron_job_name, job);
  const updated = is(await basic.update_device_group(dg, { apps: [] }), 202, 'update_device_group');
  assert.equal([updated.device_group_id, updated.apps, updated.cron_jobs], [2, [], [job]]);
  assert.is(is(await basic.prune__device_group_images(dg), 202, 'prune__device_group_images').prune_id, 2);
  assert.is((is(await basic.prune_images(), 202, 'prune_images').prune_ids as Record<string, number>)[dg], 3);
  assert.equal(is(await basic.delete_device_group(dg), 200, 'delete_device_group'), {});
  for (const r of [
    await basic.list_device_group(dg),
    await basic.list_device_group_info(dg),
    await basic.update_device_group(dg, { apps: [] }),
    await basic.delete_device_group(dg),
    await basic.prune__device_group_images(dg),
  ]) {
    assert.equal(is(r, 403, 'a missing group'), { device_group_exists: false });
  }
});

test('reports: list_reports with its default parameters (page_size 10, filter gt, no time) and the others', async () => {
  const page = is(await basic.list_reports(), 200, 'list_reports');
  assert.equal(page, { data: null, last_id: null });
  const filtered = await bearer.list_reports({ hostname: 'h1', device_group: 'g', report_creation_time: 0, updated: 'True', page_size: 5 });
  assert.equal(is(filtered, 200, 'list_reports filtered'), { data: null, last_id: null });
});

test('users: create 200, list, get, update (PUT) 200, refresh 200 {"token"} usable as Bearer, delete 200 {}, missing 403', async () => {
  const u = uniqueName('user');
  const created = is(await basic.create_user(u, { password: 'a-long-password-1' }), 200, 'create_user');
  assert.is(created.user_name, u);
  assert.equal(is(await basic.create_user(u, {}), 403, 'again'), { user_exists: true });
  assert.ok((is(await bearer.list_users(), 200, 'list_users').users as string[]).includes(u));
  assert.is(is(await basic.list_user(u), 200, 'list_user').user_name, u);
  is(await basic.update_user(u, { password: 'another-password-2' }), 200, 'update_user');
  const token = is(await basic.refresh_user_token(u), 200, 'refresh_user_token').token as string;
  assert.type(token, 'string');
  // The user's own token works as the SDK sends it; the user is no admin.
  assert.equal(is(await new Sdk({ token }).check_api(), 200, 'check_api as the user'), { api_available: true });
  assert.equal(is(await new Sdk({ token }).list_users(), 403, 'list_users as the user'), { access_allowed: false });
  assert.equal(is(await new Sdk({ username: u, password: 'another-password-2' }).check_api(), 200, 'basic as the user'), { api_available: true });
  assert.equal(is(await basic.delete_user(u), 200, 'delete_user'), {});
  assert.equal(is(await basic.list_user(u), 403, 'missing'), { user_exists: false });
  assert.equal(is(await basic.update_user(u, { password: 'a-long-password-3' }), 403, 'missing update'), { user_name: false });
  assert.equal(is(await basic.refresh_user_token(u), 403, 'missing refresh'), { user_name: false });
});

test('user groups: create 200, list, get, update (PUT) 200, delete 200 {}, missing 403', async () => {
  const g = uniqueName('ug');
  const config = { group_members: [], pruning_allowed: true, apps: { web: 'rw' }, device_groups: { edge: 'ro' }, cron_jobs: {}, admin: false };
  const created = is(await basic.create_user_group(g, config), 200, 'create_user_group');
  assert.equal([created.user_group, created.pruning_allowed, created.device_groups], [g, true, { edge: 'ro' }]);
  assert.equal(is(await basic.create_user_group(g, config), 403, 'again'), { user_group_exists: true });
  assert.ok((is(await bearer.list_user_groups(), 200, 'list_user_groups').user_groups as string[]).includes(g));
  assert.is(is(await basic.list_user_group(g), 200, 'list_user_group').user_group, g);
  assert.equal(is(await basic.update_user_group(g, { apps: { db: 'ro' } }), 200, 'update_user_group').apps, { db: 'ro' });
  assert.equal(is(await basic.delete_user_group(g), 200, 'delete_user_group'), {});
  assert.equal(is(await basic.list_user_group(g), 403, 'missing'), { user_group_exists: false });
  assert.equal(is(await basic.delete_user_group(g), 403, 'missing delete'), { user_group_exists: false });
});

test('cron jobs: create 200, list, info, update PUT and POST (force_all) 202, delete 200 {}, missing 403, bad schedule 400', async () => {
  const c = uniqueName('job');
  const created = is(await basic.create_cron_job(c, { docker_image: 'busybox', schedule: '*/5 * * * *', cron_job_name: c }), 200, 'create_cron_job');
  assert.equal([created.cron_job_name, created.cron_job_id], [c, 1]);
  assert.equal(is(await basic.create_cron_job(c, { docker_image: 'busybox', schedule: '* * * * *' }), 403, 'again'), { cron_job_exists: true });
  assert.is(is(await basic.create_cron_job(uniqueName('job'), { docker_image: 'busybox', schedule: 'every day' }), 400, 'bad schedule').schedule_valid, false);
  assert.ok((is(await bearer.list_cron_jobs(), 200, 'list_cron_jobs').cron_jobs as string[]).includes(c));
  assert.is(is(await basic.list_cron_job_info(c), 200, 'list_cron_job_info').schedule, '*/5 * * * *');
  assert.is(is(await basic.update_cron_job(c, { schedule: '0 1 * * *' }), 202, 'update_cron_job').cron_job_id, 2);
  const post = is(await basic.update_cron_job(c, { docker_image: 'busybox:1.37', schedule: '0 2 * * *' }, true), 202, 'update_cron_job force_all');
  assert.equal([post.cron_job_id, post.docker_image, post.env_vars], [3, 'busybox:1.37', []]);
  assert.equal(is(await basic.delete_cron_job(c), 200, 'delete_cron_job'), {});
  for (const r of [await basic.list_cron_job_info(c), await basic.update_cron_job(c, { schedule: '* * * * *' }), await basic.delete_cron_job(c)]) {
    assert.equal(is(r, 403, 'a missing job'), { cron_job_exists: false });
  }
});

test('every one of the SDK methods was called', () => {
  assert.is(called.size, SDK_METHODS, [...called].sort().join(', '));
});

test.run();
