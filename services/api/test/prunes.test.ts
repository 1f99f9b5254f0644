import { createNebulaClient, httpStatusOf, nebulaErrorBody } from '@nebula/client';
import { parsePruneQuery } from '@nebula/contracts';
import { sql } from '@nebula/db';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { basicHeader, type HttpResult, http, startEnv, type TestEnv } from './helpers.ts';

/**
 * `GET /api/v2/prunes` and tRPC `prunes.list` against the real PostgreSQL: what hosts freed per
 * prune, filtered, with the total; who may read it (pruning_allowed or admin: every group; "ro" on
 * a group: that group); bad parameters a 400 naming them; the OpenAPI entry.
 */
const test = suite('prunes');
let env: TestEnv;
let api: ApiServer;
const PASSWORDS = { pruner: 'pruner-password-1', viewer: 'viewer-password-1', stranger: 'stranger-password-1' };
const as = (user: keyof typeof PASSWORDS) => basicHeader(user, PASSWORDS[user]);
const req = (path: string, auth?: string | null): Promise<HttpResult> => http(api.url, 'GET', path, auth === undefined ? {} : { auth });

test.before(async () => {
  env = await startEnv();
  api = await env.startApi({ server: { retention: false } });
  for (const u of Object.keys(PASSWORDS) as Array<keyof typeof PASSWORDS>) {
    assert.is((await http(api.url, 'POST', `/api/v2/users/${u}`, { body: { password: PASSWORDS[u] } })).status, 200);
  }
  await http(api.url, 'POST', '/api/v2/user_groups/pruners', { body: { group_members: ['pruner'], pruning_allowed: true } });
  await http(api.url, 'POST', '/api/v2/user_groups/viewers', { body: { group_members: ['viewer'], device_groups: { g1: 'ro' } } });
  await sql`truncate host_prunes`.execute(env.db);
  const at = (s: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, s));
  await env.db
    .insertInto('host_prunes')
    .values([
      { host: 'h1', device_group: 'g1', prune_id: 1, bytes_freed: 3_000_000_000, images_removed: ['sha256:a', 'sha256:b'], error: null, reported_at: at(1) },
      { host: 'h2', device_group: 'g1', prune_id: 1, bytes_freed: 0, images_removed: [], error: 'engine away', reported_at: at(2) },
      { host: 'h1', device_group: 'g1', prune_id: 2, bytes_freed: 500, images_removed: ['sha256:c'], error: null, reported_at: at(3) },
      { host: 'h3', device_group: 'g2', prune_id: 1, bytes_freed: 7, images_removed: ['sha256:d'], error: null, reported_at: at(4) },
    ])
    .execute();
});
test.after(async () => env.close());

type List = { prunes: Array<{ host: string; device_group: string; prune_id: number; bytes_freed: number }>; bytes_freed: number };
const rows = (l: List) => l.prunes.map((p) => `${p.device_group}/${p.prune_id}/${p.host}`);

test('the listing: newest first, filtered by group, prune and host, with the total of what matches', async () => {
  const all = await req('/api/v2/prunes');
  assert.is(all.status, 200, all.text);
  assert.equal(rows(all.body as List), ['g2/1/h3', 'g1/2/h1', 'g1/1/h2', 'g1/1/h1']);
  assert.is((all.body as List).bytes_freed, 3_000_000_507);
  assert.equal((all.body as List).prunes[3], {
    host: 'h1',
    device_group: 'g1',
    prune_id: 1,
    bytes_freed: 3_000_000_000,
    images_removed: ['sha256:a', 'sha256:b'],
    error: null,
    reported_at: '2030-01-01T00:00:01.000Z',
  });
  const one = (await req('/api/v2/prunes?device_group=g1&prune_id=1')).body as List;
  assert.equal(rows(one), ['g1/1/h2', 'g1/1/h1']);
  assert.is(one.bytes_freed, 3_000_000_000);
  assert.equal(rows((await req('/api/v2/prunes?host=h1')).body as List), ['g1/2/h1', 'g1/1/h1']);
  const limited = (await req('/api/v2/prunes?device_group=g1&limit=1')).body as List;
  assert.equal(rows(limited), ['g1/2/h1']);
  assert.is(limited.bytes_freed, 3_000_000_500, 'the total counts every match, not only those listed');
  assert.equal((await req('/api/v2/prunes?device_group=nope')).body, { prunes: [], bytes_freed: 0 });
});

test('bad parameters: 400 naming each', async () => {
  for (const [q, field] of [
    ['prune_id=x', 'prune_id'],
    ['prune_id=0', 'prune_id'],
    ['device_group=a.b', 'device_group'],
    ['host=h1&host=h2', 'host'],
    ['limit=100000', 'limit'],
    ['colour=red', 'colour'],
  ] as const) {
    const r = await req(`/api/v2/prunes?${q}`);
    assert.is(r.status, 400, q);
    assert.ok(field in ((r.body as { errors: Record<string, unknown> }).errors ?? {}), `${q}: ${r.text}`);
  }
  assert.equal(parsePruneQuery(new URLSearchParams('device_group=g1&prune_id=3')), { ok: true, value: { device_group: 'g1', prune_id: 3, limit: 1000 } });
});

test('rights: pruning_allowed reads every group; "ro" on a group reads it (and only it); nothing else does', async () => {
  assert.is((await req('/api/v2/prunes', null)).status, 401);
  assert.equal(rows((await req('/api/v2/prunes', as('pruner'))).body as List), ['g2/1/h3', 'g1/2/h1', 'g1/1/h2', 'g1/1/h1']);
  assert.equal(rows((await req('/api/v2/prunes?device_group=g1', as('viewer'))).body as List), ['g1/2/h1', 'g1/1/h2', 'g1/1/h1']);
  const own = (await req('/api/v2/prunes', as('viewer'))).body as List;
  assert.equal(rows(own), ['g1/2/h1', 'g1/1/h2', 'g1/1/h1'], 'without a group: the groups it may read');
  assert.is(own.bytes_freed, 3_000_000_500);
  for (const [path, who] of [
    ['/api/v2/prunes?device_group=g2', 'viewer'],
    ['/api/v2/prunes?device_group=g1', 'stranger'],
    ['/api/v2/prunes', 'stranger'],
  ] as const) {
    const r = await req(path, as(who));
    assert.is(r.status, 403, `${who} ${path}`);
    assert.equal(r.body, { access_allowed: false });
  }
});

test('tRPC prunes.list: the same answers and refusals', async () => {
  const viewer = createNebulaClient({ url: `${api.url}/`, username: 'viewer', password: PASSWORDS.viewer });
  const l = await viewer.prunes.list.query({ device_group: 'g1', prune_id: 2 });
  assert.equal(rows(l), ['g1/2/h1']);
  assert.is(l.bytes_freed, 500);
  const stranger = createNebulaClient({ url: `${api.url}/`, username: 'stranger', password: PASSWORDS.stranger });
  try {
    await stranger.prunes.list.query({ device_group: 'g1' });
    assert.unreachable('a user without rights read the prunes');
  } catch (err) {
    assert.is(httpStatusOf(err), 403);
    assert.is(nebulaErrorBody(err)?.access_allowed, false);
  }
});

test('/openapi.json documents GET /api/v2/prunes', async () => {
  const doc = (await req('/openapi.json')).body as { paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>> };
  const op = doc.paths['/api/v2/prunes']?.get;
  assert.ok(op);
  assert.equal(
    op.parameters?.map((p) => p.name),
    ['device_group', 'prune_id', 'host', 'limit'],
  );
});

test.run();
