import { type HostUsage, reportOid } from '@nebula/contracts';
import { sql } from '@nebula/db';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pruneExpiredReports } from '../src/db/report-retention.ts';
import type { ApiServer } from '../src/index.ts';
import { basicHeader, http, startEnv, type TestEnv } from './helpers.ts';

/**
 * `GET /api/v2/reports` against the real PostgreSQL: the original's paging (by id, `last_id` sent
 * back), each filter, the reply's shape, 400 naming each bad parameter, any login; and the pruning
 * of expired reports.
 */
const test = suite('reports');
let env: TestEnv;
let api: ApiServer;
const req = (path: string, auth?: string | null) => http(api.url, 'GET', path, auth === undefined ? {} : { auth });

/** Whole seconds, so that `report_creation_time` filters hit exact boundaries. */
const T0 = 1_800_000_000;

function usage(n: number): HostUsage {
  return {
    gathered_at: new Date((T0 + n) * 1000).toISOString(),
    cpu: { cores: 4, used_percent: n, load_1m: 0.5 },
    memory: { used_bytes: 1024 * 1024 * 1024, total_bytes: 4 * 1024 * 1024 * 1024 },
    disk: n % 2 === 0 ? { path: '/var/lib/docker', used_bytes: 10 * 1024 * 1024 * 1024, total_bytes: 40 * 1024 * 1024 * 1024 } : null,
    containers: [{ id: `c${n}`, name: 'web-1', app: 'web', cpu_percent: 1.25, memory_bytes: 64 * 1024 * 1024, memory_limit_bytes: null }],
  };
}

/** Reports 1..9: host a (1-5) and b (6-9); group g1 for odd ones; updated every third; created T0+n. */
async function seed(): Promise<string[]> {
  const rows = Array.from({ length: 9 }, (_, i) => i + 1).map((n) => ({
    host: n <= 5 ? 'host-a' : 'host-b',
    device_group: n % 2 === 1 ? 'g1' : null,
    created_at: new Date((T0 + n) * 1000),
    gathered_at: new Date((T0 + n) * 1000 - 500),
    updated: n % 3 === 0,
    revisions: JSON.stringify({ web: '1:1' }),
    usage: JSON.stringify(usage(n)),
  }));
  const ids = await env.db.insertInto('host_reports').values(rows).returning('id').execute();
  return ids.map((r) => r.id);
}

let ids: string[] = [];

test.before(async () => {
  env = await startEnv();
  api = await env.startApi({ server: { retention: false } });
  await sql`truncate host_reports restart identity`.execute(env.db);
  ids = await seed();
});
test.after(async () => env.close());

type Page = { data: Array<Record<string, unknown> & { _id: { $oid: string }; hostname: string }> | null; last_id: { $oid: string } | null };
const page = async (query: string): Promise<Page> => {
  const r = await req(`/api/v2/reports${query}`);
  assert.is(r.status, 200, r.text);
  return r.body as Page;
};
const numbers = (p: Page) => (p.data ?? []).map((d) => (d.host as { cpu: { used_percent: number } }).cpu.used_percent);

test('a page of 10 by default, by id ascending, in the original shape', async () => {
  const p = await page('');
  assert.equal(numbers(p), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(p.last_id, { $oid: reportOid(ids[8] as string) });
  const first = p.data?.[0] as Record<string, unknown>;
  assert.equal(Object.keys(first).sort(), [
    '_id',
    'apps_containers',
    'cpu_usage',
    'device_group',
    'host',
    'hostname',
    'memory_usage',
    'report_creation_time',
    'report_insert_date',
    'root_disk_usage',
    'updated',
  ]);
  assert.equal(first._id, { $oid: reportOid(ids[0] as string) });
  assert.is(first._id && (first._id as { $oid: string }).$oid.length, 24);
  assert.is(first.hostname, 'host-a');
  assert.is(first.device_group, 'g1');
  assert.is(first.report_creation_time, T0 + 1);
  assert.is(first.updated, false);
  assert.equal(first.apps_containers, usage(1).containers);
  assert.equal(first.memory_usage, { total: 4096, used: 1024, free: 3072 });
  assert.is(first.root_disk_usage, null);
  assert.equal(p.data?.[1]?.root_disk_usage, { total: 40960, used: 10240, free: 30720 });
  assert.type(first.report_insert_date, 'string');
});

test('paging: page_size, then last_id from the reply until an empty page {"data": null, "last_id": null}', async () => {
  const seen: number[] = [];
  let last: string | null = null;
  for (let i = 0; i < 10; i++) {
    const p = await page(`?page_size=4${last ? `&last_id=${last}` : ''}`);
    if (p.data === null) {
      assert.is(p.last_id, null);
      break;
    }
    assert.ok(p.data.length <= 4);
    seen.push(...numbers(p));
    last = p.last_id?.$oid ?? null;
  }
  assert.equal(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(await page(`?last_id=${reportOid(ids[8] as string)}`), { data: null, last_id: null });
});

test('filters: hostname, device_group, updated (True/False/true/false), and their combination', async () => {
  assert.equal(numbers(await page('?hostname=host-b')), [6, 7, 8, 9]);
  assert.equal(numbers(await page('?hostname=nobody')), []);
  assert.equal(numbers(await page('?device_group=g1')), [1, 3, 5, 7, 9]);
  assert.equal(numbers(await page('?updated=True')), [3, 6, 9]);
  assert.equal(numbers(await page('?updated=true')), [3, 6, 9]);
  assert.equal(numbers(await page('?updated=False')), [1, 2, 4, 5, 7, 8]);
  assert.equal(numbers(await page('?updated=false&hostname=host-a&device_group=g1')), [1, 5]);
});

test('report_creation_time with each filter (eq by default)', async () => {
  const t = T0 + 4;
  assert.equal(numbers(await page(`?report_creation_time=${t}`)), [4]);
  const by = async (f: string) => numbers(await page(`?report_creation_time=${t}&report_creation_time_filter=${f}`));
  assert.equal(await by('eq'), [4]);
  assert.equal(await by('ne'), [1, 2, 3, 5, 6, 7, 8, 9]);
  assert.equal(await by('gt'), [5, 6, 7, 8, 9]);
  assert.equal(await by('gte'), [4, 5, 6, 7, 8, 9]);
  assert.equal(await by('lt'), [1, 2, 3]);
  assert.equal(await by('lte'), [1, 2, 3, 4]);
  // The SDK always sends the filter (default "gt"), with or without a time: alone it filters nothing.
  assert.equal(numbers(await page('?report_creation_time_filter=gt')).length, 9);
});

test('bad parameters: 400 naming each (never 500)', async () => {
  for (const [query, name] of [
    ['page_size=0', 'page_size'],
    ['page_size=1001', 'page_size'],
    ['page_size=x', 'page_size'],
    ['last_id=not-an-id', 'last_id'],
    [`last_id=${'f'.repeat(24)}`, 'last_id'],
    ['report_creation_time=yesterday', 'report_creation_time'],
    ['report_creation_time_filter=around', 'report_creation_time_filter'],
    ['updated=maybe', 'updated'],
    ['hostnam=host-a', 'hostnam'],
    ['updated=True&updated=False', 'updated'],
  ]) {
    const r = await req(`/api/v2/reports?${query}`);
    assert.is(r.status, 400, `${query}: ${r.text}`);
    assert.equal(Object.keys((r.body as { errors: Record<string, unknown> }).errors), [name], query);
  }
});

test('needs a login, any user: 401 without, 200 for a user of no group', async () => {
  assert.is((await req('/api/v2/reports', null)).status, 401);
  const made = await http(api.url, 'POST', '/api/v2/users/reader', { body: { password: 'reader-password-1' } });
  assert.is(made.status, 200, made.text);
  const r = await req('/api/v2/reports?page_size=1', basicHeader('reader', 'reader-password-1'));
  assert.is(r.status, 200, r.text);
  assert.is((r.body as Page).data?.length, 1);
});

test('wrong method: 405', async () => {
  const r = await http(api.url, 'POST', '/api/v2/reports', { body: {} });
  assert.is(r.status, 405);
});

test('retention: reports older than their cutoff go, in batches, the others stay', async () => {
  await sql`truncate host_reports restart identity`.execute(env.db);
  const day = 86_400_000;
  const rows = [10, 9, 8, 3, 0].map((ageDays, i) => ({
    host: 'h',
    device_group: null,
    created_at: new Date(Date.now() - ageDays * day - 60_000),
    gathered_at: new Date(Date.now() - i * 1000),
    updated: false,
    revisions: '{}',
    usage: JSON.stringify(usage(i)),
  }));
  await env.db.insertInto('host_reports').values(rows).execute();
  assert.is(await pruneExpiredReports(env.db, { reportRetentionDays: 7, reportBatchSize: 2 }), 2);
  assert.is(await pruneExpiredReports(env.db, { reportRetentionDays: 7, reportBatchSize: 2 }), 1);
  assert.is(await pruneExpiredReports(env.db, { reportRetentionDays: 7, reportBatchSize: 2 }), 0);
  const left = await env.db.selectFrom('host_reports').select('id').orderBy('id').execute();
  assert.equal(
    left.map((r) => r.id),
    ['4', '5'],
  );
});

test.run();
