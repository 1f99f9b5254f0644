import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { authSettings, localAdmin, parseAuthorization } from '../src/auth.ts';
import { ADMIN, type ApiProcess, basicHeader, http, spawnApi, startEnv, type TestEnv, TOKEN, uniqueName } from './helpers.ts';

/**
 * Auth, against the real entry point (main.ts as a process): none, wrong, basic, bearer; health open;
 * every other route closed; no credential in any log line or error body; refusing to start unsafe.
 */
const test = suite('auth');
let env: TestEnv;
let api: ApiProcess;

test.before(async () => {
  env = await startEnv();
  api = await spawnApi({
    DATABASE_URL: env.dbUrl,
    ...env.busVars,
    BASIC_AUTH_USER: ADMIN.user,
    BASIC_AUTH_PASSWORD: ADMIN.password,
    AUTH_TOKEN: TOKEN,
    LOG_LEVEL: 'debug',
    // This file sends hundreds of wrong credentials on purpose; the throttle has a test of its own.
    API_LOGIN_MAX_FAILURES_PER_MINUTE: '100000',
    API_LOGIN_MAX_FAILURES_PER_USER_PER_MINUTE: '100000',
  });
});
test.after(async () => {
  await api?.stop();
  await env.close();
});

const closed: Array<[string, string]> = [
  ['GET', '/api/v2/status'],
  ['GET', '/api/v2/apps'],
  ['POST', '/api/v2/apps/x'],
  ['DELETE', '/api/v2/apps/x'],
  ['POST', '/api/v2/apps/x/roll'],
  ['GET', '/api/v2/nope'],
  ['GET', '/openapi.json'],
  ['GET', '/metrics'],
  ['GET', '/trpc/status.get'],
  ['POST', '/trpc/apps.create'],
  ['GET', '/nope'],
];

test('health is open', async () => {
  const r = await http(api.url, 'GET', '/health', { auth: null });
  assert.is(r.status, 200);
  assert.equal((r.body as { checks: object }).checks, { postgres: true, nats: true });
});

test('no credentials, wrong ones, malformed headers: 401 JSON with WWW-Authenticate, everywhere else', async () => {
  const wrong = [
    null,
    basicHeader(ADMIN.user, 'wrong'),
    basicHeader('root', ADMIN.password),
    basicHeader(ADMIN.user, `${ADMIN.password}x`),
    basicHeader(ADMIN.user, ''),
    `Bearer ${TOKEN}x`,
    `Bearer ${TOKEN.slice(0, -1)}`,
    'Bearer',
    `Basic ${Buffer.from('nocolon').toString('base64')}`,
    'Basic !!!not-base64!!!',
    `Digest ${TOKEN}`,
    TOKEN,
  ];
  for (const auth of wrong) {
    for (const [method, path] of closed) {
      const r = await http(api.url, method, path, { auth, body: method === 'POST' ? { docker_image: 'nginx' } : undefined });
      assert.is(r.status, 401, `${method} ${path} with ${auth === null ? 'nothing' : 'a wrong header'}`);
      assert.match(r.headers.get('www-authenticate') ?? '', /Basic realm="nebula".*Bearer/);
      assert.not.ok(r.text.includes(ADMIN.password) || r.text.includes(TOKEN));
    }
  }
  assert.equal((await http(api.url, 'GET', '/api/v2/apps', { auth: basicHeader() })).body, { apps: [] });
});

test('basic and bearer both work; the actor is recorded', async () => {
  assert.is((await http(api.url, 'GET', '/api/v2/status', { auth: basicHeader() })).status, 200);
  assert.is((await http(api.url, 'GET', '/api/v2/status', { auth: `Bearer ${TOKEN}` })).status, 200);
  assert.is((await http(api.url, 'GET', '/api/v2/status', { auth: `bearer ${TOKEN}` })).status, 200);
  const name = uniqueName();
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { auth: basicHeader(), body: { docker_image: 'nginx' } })).status, 200);
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}/stop`, { auth: `Bearer ${TOKEN}` })).status, 202);
  const h = await http(api.url, 'GET', `/api/v2/apps/${name}/history`, { auth: basicHeader() });
  assert.equal(
    (h.body as { revisions: Array<{ actor: string }> }).revisions.map((r) => r.actor),
    ['token', ADMIN.user],
  );
  const metrics = await fetch(`${api.url}/metrics`, { headers: { authorization: basicHeader() } });
  assert.is(metrics.status, 200);
  assert.match(await metrics.text(), /nebula_api_outbox_relay_active/);
});

test('no credential in any log line', async () => {
  // Requests with right and wrong credentials were logged above at debug level.
  const out = api.output();
  assert.ok(out.length > 0);
  for (const secret of [ADMIN.password, TOKEN, Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')]) {
    assert.not.ok(out.includes(secret), 'a secret is in the log');
  }
  assert.match(out, /auth: local admin: basic \(user \\"admin\\"\) \+ bearer token/);
  assert.match(out, /"status":401/);
  assert.match(out, /"credentials":"rejected"/);
});

test('auth enabled without credentials: refuses to start, naming the variables', async () => {
  const p = await spawnApi({ DATABASE_URL: env.dbUrl, ...env.busVars }, { waitHealthy: false });
  const code = await p.exited;
  assert.ok(code !== 0);
  assert.match(p.output(), /BASIC_AUTH_USER/);
  assert.match(p.output(), /AUTH_TOKEN/);
  const half = await spawnApi({ DATABASE_URL: env.dbUrl, ...env.busVars, BASIC_AUTH_USER: 'admin' }, { waitHealthy: false });
  assert.ok((await half.exited) !== 0);
  assert.match(half.output(), /BASIC_AUTH_PASSWORD/);
});

test('the bus identity is required: no NATS_CREDS or BUS_KEYS_FILE, or a wrong one, stops the API naming the variable', async () => {
  const base = { DATABASE_URL: env.dbUrl, BASIC_AUTH_USER: ADMIN.user, BASIC_AUTH_PASSWORD: ADMIN.password };
  const { NATS_CREDS: _c, ...noCreds } = env.busVars;
  const a = await spawnApi({ ...base, ...noCreds }, { waitHealthy: false });
  assert.is(await a.exited, 2);
  assert.match(a.output(), /NATS_CREDS: is required/);
  const { BUS_KEYS_FILE: _k, ...noKeys } = env.busVars;
  const b = await spawnApi({ ...base, ...noKeys }, { waitHealthy: false });
  assert.is(await b.exited, 2);
  assert.match(b.output(), /BUS_KEYS_FILE: is required/);
  // A keys file with a field missing and another wrong: both named, no value echoed.
  const dir = mkdtempSync(join(tmpdir(), 'nebula-keys-'));
  const bad = join(dir, 'keys.json');
  const { message_signing_seed: _m, ...partial } = env.nats.keys;
  writeFileSync(bad, JSON.stringify({ ...partial, account_public_key: 'oops' }));
  const c = await spawnApi({ ...base, ...env.busVars, BUS_KEYS_FILE: bad }, { waitHealthy: false });
  assert.ok((await c.exited) !== 0);
  assert.match(
    c.output(),
    /BUS_KEYS_FILE: not the control plane's bus keys: account_public_key: must be an account public key \(A\.\.\.\); message_signing_seed: is missing/,
  );
  assert.not.ok(c.output().includes(env.nats.keys.account_signing_seed), 'no seed in the output');
  const d = await spawnApi({ ...base, ...env.busVars, BUS_KEYS_FILE: join(dir, 'nope.json') }, { waitHealthy: false });
  assert.ok((await d.exited) !== 0);
  assert.match(d.output(), /BUS_KEYS_FILE: cannot read .*nope\.json: ENOENT/);
  rmSync(dir, { recursive: true, force: true });
});

test('the local admin: constant-time checks of each part; only basic or bearer', () => {
  const s = authSettings({ BASIC_AUTH_USER: 'u', BASIC_AUTH_PASSWORD: 'p:with:colons', AUTH_TOKEN: undefined });
  const check = (t: typeof s, header: string) => {
    const c = parseAuthorization(header);
    return c === null ? null : localAdmin(t, c);
  };
  assert.equal(check(s, basicHeader('u', 'p:with:colons'))?.name, 'u');
  assert.is(check(s, basicHeader('u', 'p:with:colons'))?.permissions.admin, true);
  assert.is(check(s, 'Bearer anything'), null);
  assert.is(check(s, ''), null);
  const t = authSettings({ AUTH_TOKEN: 't0k' });
  assert.equal(check(t, 'Bearer t0k')?.name, 'token');
  assert.is(check(t, basicHeader('u', 't0k')), null);
  assert.throws(() => authSettings({}), /no local admin is configured/);
  // There is no anonymous mode: the original's AUTH_ENABLED=false stops the API at start.
  assert.throws(() => authSettings({ AUTH_ENABLED: false, BASIC_AUTH_USER: 'u', BASIC_AUTH_PASSWORD: 'p' }), /AUTH_ENABLED=false is not supported/);
});

test.run();
