import type { IncomingMessage } from 'node:http';
import { createNebulaClient } from '@nebula/client';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, basicHeader, http, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * A browser holding the API's Basic credentials must not be made to change anything by another
 * site's page (http/cross-site.ts): against the real server, with valid credentials, what a page can
 * send without a CORS preflight (text/plain, form posts, multipart) or with a foreign Origin /
 * Sec-Fetch-Site is refused before anything is stored; our own clients still work.
 */
const test = suite('cross-site');
let env: TestEnv;
let api: ApiServer;

const ALLOWED = 'https://console.example.com';

/** Everything a change would leave behind: apps, revisions, rollouts, outbox rows. */
async function stored() {
  const apps = await env.db.selectFrom('apps').select(['name', 'incarnation']).orderBy('incarnation').execute();
  const revisions = await env.db.selectFrom('app_revisions').select(['incarnation', 'revision']).orderBy('incarnation').orderBy('revision').execute();
  const rollouts = await env.db.selectFrom('rollouts').select('id').orderBy('id').execute();
  const outbox = await env.db.selectFrom('outbox').select('id').orderBy('id').execute();
  const tokens = await env.db.selectFrom('join_tokens').select('id').orderBy('id').execute();
  return JSON.stringify({ apps, revisions, rollouts, outbox, tokens });
}

/** A request as a page of another site could make the browser send it: credentials attached, body JSON-looking. */
const forged = (method: string, path: string, headers: Record<string, string>, body?: string) =>
  http(api.url, method, path, { body: body ?? JSON.stringify({ docker_image: 'evil/miner:1' }), headers });

async function assertNothingStoredBy(what: string, send: () => Promise<{ status: number; body: unknown }>, status: number, name: string) {
  const before = await stored();
  const r = await send();
  assert.is(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  assert.is(await stored(), before, `${what}: nothing stored`);
  assert.is((await http(api.url, 'GET', `/api/v2/apps/${name}`)).status, 403, `${what}: the app does not exist`);
  return r;
}

test.before(async () => {
  env = await startEnv();
  api = await env.startApi({ server: { allowedOrigins: [ALLOWED] } });
});
test.after(async () => env.close());

test('a text/plain POST with valid Basic credentials and a JSON body: 415, nothing stored', async () => {
  const name = uniqueName();
  const r = await assertNothingStoredBy(
    'text/plain',
    () =>
      forged('POST', `/api/v2/apps/${name}`, { 'content-type': 'text/plain;charset=UTF-8', 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }),
    403,
    name,
  );
  assert.is((r.body as { error: string }).error, 'cross-site request refused');
  // Without the browser's own headers (an old browser, a privacy extension stripping them): the content type alone refuses it.
  const plain = await assertNothingStoredBy('text/plain, no Origin', () => forged('POST', `/api/v2/apps/${name}`, { 'content-type': 'text/plain' }), 415, name);
  assert.equal(plain.body, { error: 'unsupported media type', message: 'changes require Content-Type: application/json' });
  await env.nc.flush();
  assert.is((await env.db.selectFrom('outbox').select('id').execute()).length, 0, 'the outbox has nothing to publish');
});

test('form-urlencoded and multipart (what an HTML form sends): 415, nothing stored', async () => {
  const name = uniqueName();
  await assertNothingStoredBy(
    'form',
    () => forged('POST', `/api/v2/apps/${name}`, { 'content-type': 'application/x-www-form-urlencoded' }, 'docker_image=evil%2Fminer%3A1'),
    415,
    name,
  );
  const multipart = `--b\r\nContent-Disposition: form-data; name="docker_image"\r\n\r\nevil/miner:1\r\n--b--\r\n`;
  await assertNothingStoredBy(
    'multipart',
    () => forged('POST', `/api/v2/apps/${name}`, { 'content-type': 'multipart/form-data; boundary=b' }, multipart),
    415,
    name,
  );
  await assertNothingStoredBy('empty content type', () => forged('POST', `/api/v2/apps/${name}`, { 'content-type': '' }), 415, name);
});

test('a JSON POST with a foreign Origin, Origin: null, or Sec-Fetch-Site cross-site/same-site: 403, nothing stored', async () => {
  const name = uniqueName();
  const json = { 'content-type': 'application/json' };
  for (const [what, headers] of [
    ['Origin evil', { ...json, origin: 'https://evil.example' }],
    ['Origin null', { ...json, origin: 'null' }],
    ['Origin of another port', { ...json, origin: `http://127.0.0.1:${api.port + 1}` }],
    ['Sec-Fetch-Site cross-site', { ...json, 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site same-site', { ...json, 'sec-fetch-site': 'same-site' }],
  ] as const) {
    const r = await assertNothingStoredBy(what, () => forged('POST', `/api/v2/apps/${name}`, headers), 403, name);
    assert.is((r.body as { error: string }).error, 'cross-site request refused', what);
  }
});

test('refused before auth: the same answer with wrong or no credentials (nothing learnt about them)', async () => {
  const name = uniqueName();
  for (const [what, auth] of [
    ['right credentials', basicHeader()],
    ['wrong password', basicHeader(ADMIN.user, 'wrong')],
    ['no credentials', null],
  ] as const) {
    const r = await http(api.url, 'POST', `/api/v2/apps/${name}`, { auth, body: '{"docker_image":"x"}', headers: { 'content-type': 'text/plain' } });
    assert.is(r.status, 415, what);
    assert.is(r.headers.get('www-authenticate'), null);
  }
  const r = await http(api.url, 'POST', `/api/v2/apps/${name}`, { auth: null, body: '{"docker_image":"x"}', headers: { origin: 'https://evil.example' } });
  assert.is(r.status, 403);
});

test('bodyless changes need the content type too: stop and DELETE without it are refused, with it taken', async () => {
  const name = uniqueName();
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx' } })).status, 200);
  const before = await stored();
  const bare = (method: string, path: string) =>
    fetch(api.url + path, { method, headers: { authorization: basicHeader() }, signal: AbortSignal.timeout(5000) }).then(async (res) => ({
      status: res.status,
      body: (await res.json()) as unknown,
    }));
  assert.is((await bare('POST', `/api/v2/apps/${name}/stop`)).status, 415);
  assert.is((await bare('DELETE', `/api/v2/apps/${name}`)).status, 415);
  assert.is(await stored(), before, 'nothing changed');
  // helpers' http() sends application/json on every change, as our clients do.
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}/stop`)).status, 202);
  assert.is((await http(api.url, 'DELETE', `/api/v2/apps/${name}`)).status, 200);
});

test('the join and renew routes (no user credential) follow the same rule; a refusal is not a counted failure', async () => {
  for (const path of ['/api/v2/hosts/join', '/api/v2/hosts/renew']) {
    const r = await http(api.url, 'POST', path, { auth: null, body: '{"token":"x"}', headers: { 'content-type': 'text/plain' } });
    assert.is(r.status, 415, path);
    const o = await http(api.url, 'POST', path, { auth: null, body: '{"token":"x"}', headers: { origin: 'https://evil.example' } });
    assert.is(o.status, 403, path);
  }
  // Far more refusals than the failure limit (10 a minute), and a JSON join is still looked at (400, not 429).
  for (let i = 0; i < 12; i++) await http(api.url, 'POST', '/api/v2/hosts/join', { auth: null, body: '{}', headers: { 'content-type': 'text/plain' } });
  assert.is((await http(api.url, 'POST', '/api/v2/hosts/join', { auth: null, body: {} })).status, 400);
});

test('what passes: same-origin Origin, an allowed Origin, Sec-Fetch-Site same-origin/none, JSON with a charset; reads from anywhere', async () => {
  for (const [what, headers] of [
    ['own Origin', { origin: api.url }],
    ['allowed Origin', { origin: ALLOWED, 'sec-fetch-site': 'same-site' }],
    ['same-origin', { 'sec-fetch-site': 'same-origin', origin: api.url }],
    ['none', { 'sec-fetch-site': 'none' }],
    ['charset', { 'content-type': 'Application/JSON; charset=utf-8' }],
  ] as const) {
    const name = uniqueName();
    const r = await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx' }, headers });
    assert.is(r.status, 200, `${what}: ${r.text}`);
    assert.is((await http(api.url, 'GET', `/api/v2/apps/${name}`)).status, 200, what);
  }
  const read = await http(api.url, 'GET', '/api/v2/apps', { headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } });
  assert.is(read.status, 200, 'a GET changes nothing: it passes (its answer is not readable cross-site without CORS)');
});

test('tRPC: a text/plain mutation is refused; the typed client (httpLink) sends application/json and works', async () => {
  const name = uniqueName();
  const before = await stored();
  const raw = await http(api.url, 'POST', '/trpc/apps.create', {
    body: JSON.stringify({ name, docker_image: 'evil/miner:1' }),
    headers: { 'content-type': 'text/plain' },
  });
  assert.is(raw.status, 415);
  const origin = await http(api.url, 'POST', '/trpc/apps.create', {
    body: { name, docker_image: 'evil/miner:1' },
    headers: { origin: 'https://evil.example' },
  });
  assert.is(origin.status, 403);
  assert.is(await stored(), before, 'nothing stored');

  const seen: Array<{ method?: string; url?: string; type?: string }> = [];
  const onRequest = (req: IncomingMessage) => seen.push({ method: req.method, url: req.url, type: req.headers['content-type'] });
  api.server.on('request', onRequest);
  try {
    const nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
    const created = await nebula.apps.create.mutate({ name, docker_image: 'nginx:1' });
    assert.is(created.app_name, name);
    assert.is((await nebula.apps.stop.mutate({ name })).running, false, 'an action without a body of its own');
    assert.is((await nebula.apps.get.query({ name })).app_name, name);
  } finally {
    api.server.off('request', onRequest);
  }
  const mutations = seen.filter((s) => s.method === 'POST');
  assert.is(mutations.length, 2);
  for (const m of mutations) assert.is(m.type, 'application/json', `${m.url} was sent as JSON`);
  assert.ok(
    seen.some((s) => s.method === 'GET' && s.url?.startsWith('/trpc/apps.get')),
    'queries are GETs',
  );
});

test.run();
