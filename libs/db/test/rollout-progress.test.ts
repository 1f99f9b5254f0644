import { randomUUID } from 'node:crypto';
import { hostListSchema, hostSchema, rolloutListSchema, rolloutProgressSchema } from '@nebula/contracts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  countHosts,
  createTestDatabase,
  type Database,
  getHost,
  getRolloutProgress,
  type Kysely,
  kyselyFor,
  listHosts,
  listRollouts,
  migrateToLatest,
  QueryInputError,
} from '../src/index.ts';

// Hand-made rows, as the API (rollouts) and the notifier (hosts, rollout_hosts) would write them.
const tdb = await createTestDatabase();
const db: Kysely<Database> = kyselyFor<Database>(tdb.url);
await migrateToLatest(db);

const NOW = new Date('2026-12-01T12:00:00.000Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);
const N = 3; // missed heartbeats before offline
const opts = { offlineAfterMissed: N, now: NOW };

async function host(id: string, lastSeenSecondsAgo: number, apps = ['web'], interval = 5) {
  await db
    .insertInto('hosts')
    .values({
      id,
      apps,
      running: JSON.stringify(apps.map((app) => ({ app, incarnation: 1, revision: 1, containers: [{ id: 'c1', name: `${app}-0`, state: 'running' }] }))),
      cores: 2,
      memory_mb: 1024,
      worker_version: '0.1.0',
      heartbeat_interval_seconds: interval,
      first_seen: ago(3600),
      last_seen: ago(lastSeenSecondsAgo),
    })
    .onConflict((oc) => oc.column('id').doUpdateSet({ last_seen: ago(lastSeenSecondsAgo) }))
    .execute();
}

async function rollout(app: string, incarnation: number, revision: number, expected: string[], createdSecondsAgo = 100): Promise<string> {
  const id = randomUUID();
  await db
    .insertInto('rollouts')
    .values({
      id,
      app,
      incarnation: String(incarnation),
      revision,
      action: 'update',
      expected_hosts: expected,
      created_at: ago(createdSecondsAgo),
      published_at: ago(createdSecondsAgo),
    })
    .execute();
  return id;
}

async function result(
  rolloutId: string,
  h: string,
  status: 'applied' | 'failed' | 'superseded',
  applyMs: number,
  secondsAgo: number,
  error: string | null = null,
) {
  await db
    .insertInto('rollout_hosts')
    .values({
      rollout_id: rolloutId,
      host: h,
      status,
      error,
      image_digest: 'sha256:abc',
      containers: '[]',
      pull_ms: 10,
      apply_ms: applyMs,
      reported_at: ago(secondsAgo),
    })
    .execute();
}

const hosts = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(2, '0')}`);

test('progress: applied, failed, superseded, pending, offline and joined hosts; percentiles; failures', async () => {
  const expected = hosts(10, 'p'); // p01..p10
  for (const h of expected.slice(0, 8)) await host(h, 1); // p01..p08 online
  await host('p09', 60); // 60 s > 3 × 5 s: offline
  // p10 never sent a heartbeat: offline
  await host('p11', 2); // joined after the rollout was created
  const id = await rollout('web', 1, 1, expected);
  for (const [i, h] of ['p01', 'p02', 'p03', 'p04', 'p05'].entries()) await result(id, h, 'applied', (i + 1) * 100, 50 - i);
  await result(id, 'p06', 'failed', 30, 40, 'pull: manifest unknown');
  await result(id, 'p07', 'superseded', 0, 39);
  await result(id, 'p11', 'applied', 1000, 30);

  const p = await getRolloutProgress(db, id, opts);
  assert.ok(p);
  rolloutProgressSchema.parse(p);
  assert.equal(
    {
      expected: p.expected,
      reported: p.reported,
      applied: p.applied,
      failed: p.failed,
      superseded: p.superseded,
      pending: p.pending,
      offline: p.offline,
      joined: p.joined,
    },
    { expected: 10, reported: 8, applied: 6, failed: 1, superseded: 1, pending: 1, offline: 2, joined: 1 },
  );
  assert.is(p.complete, false, 'p08 is online and has not reported');
  // Applied durations 100..500 and 1000: nearest rank.
  assert.equal(p.apply_ms, { p50: 300, p99: 1000 });
  assert.is(p.first_result_at, ago(50).toISOString());
  assert.is(p.last_result_at, ago(30).toISOString());
  assert.equal(p.failures, [{ host: 'p06', error: 'pull: manifest unknown', at: ago(40).toISOString() }]);
  assert.is(p.superseded_by, null);
  assert.equal(
    { app: p.app, incarnation: p.incarnation, revision: p.revision, action: p.action },
    { app: 'web', incarnation: 1, revision: 1, action: 'update' },
  );

  const states = Object.fromEntries(p.hosts.map((h) => [h.host, h.state]));
  assert.equal(states, {
    p01: 'applied',
    p02: 'applied',
    p03: 'applied',
    p04: 'applied',
    p05: 'applied',
    p06: 'failed',
    p07: 'superseded',
    p08: 'pending',
    p09: 'offline',
    p10: 'offline',
    p11: 'applied',
  });
  const p11 = p.hosts.find((h) => h.host === 'p11')!;
  assert.equal(
    { expected: p11.expected, online: p11.online, durations: p11.durations_ms },
    { expected: false, online: true, durations: { pull: 10, apply: 1000 } },
  );
  assert.is(p.hosts.find((h) => h.host === 'p08')!.durations_ms, null);

  // The host's state filter and paging by host id.
  const pending = await getRolloutProgress(db, id, { ...opts, hostState: 'pending' });
  assert.equal(
    pending!.hosts.map((h) => h.host),
    ['p08'],
  );
  const seen: string[] = [];
  let after: string | undefined;
  for (let i = 0; i < 10; i++) {
    const page = await getRolloutProgress(db, id, { ...opts, hostsLimit: 4, hostsAfter: after });
    seen.push(...page!.hosts.map((h) => h.host));
    if (page!.hosts_next === null) break;
    after = page!.hosts_next;
  }
  assert.equal(seen, hosts(11, 'p'));

  // p08 reports: every online expected host has reported, so the rollout is complete (p09, p10 offline).
  await result(id, 'p08', 'applied', 700, 20);
  const done = (await getRolloutProgress(db, id, opts))!;
  assert.equal({ pending: done.pending, offline: done.offline, complete: done.complete }, { pending: 0, offline: 2, complete: true });

  // p09 comes back: pending again until it reports.
  await host('p09', 0);
  const back = (await getRolloutProgress(db, id, opts))!;
  assert.equal({ pending: back.pending, offline: back.offline, complete: back.complete }, { pending: 1, offline: 1, complete: false });
  await result(id, 'p09', 'applied', 800, 0);
  const final = (await getRolloutProgress(db, id, opts))!;
  assert.equal(
    { applied: final.applied, pending: final.pending, offline: final.offline, complete: final.complete },
    { applied: 8, pending: 0, offline: 1, complete: true },
  );
});

test("offline is judged from the host's own interval and the number of missed heartbeats", async () => {
  await host('b01', 0, ['edge'], 10);
  const id = await rollout('edge', 1, 1, ['b01']);
  const at = (s: number) => getRolloutProgress(db, id, { offlineAfterMissed: N, now: new Date(NOW.getTime() + s * 1000) });
  assert.is((await at(30))!.pending, 1, 'exactly 3 intervals after the last heartbeat: still online');
  assert.is((await at(30.5))!.offline, 1, 'past 3 intervals: offline');
  assert.is((await getRolloutProgress(db, id, { offlineAfterMissed: 5, now: new Date(NOW.getTime() + 45_000) }))!.pending, 1, 'a larger setting waits longer');
  const h = await getHost(db, 'b01', opts);
  assert.is(h!.offline_after, new Date(NOW.getTime() + 30_000).toISOString());
});

test('a rollout with nobody expected is complete at once; unknown or malformed ids give null', async () => {
  const id = await rollout('lonely', 1, 1, []);
  const p = (await getRolloutProgress(db, id, opts))!;
  assert.equal(
    { expected: p.expected, complete: p.complete, apply: p.apply_ms, first: p.first_result_at, hosts: p.hosts },
    { expected: 0, complete: true, apply: { p50: null, p99: null }, first: null, hosts: [] },
  );
  assert.is(await getRolloutProgress(db, randomUUID(), opts), null);
  assert.is(await getRolloutProgress(db, 'not-a-uuid', opts), null);
  assert.is(await getRolloutProgress(db, "'; drop table rollouts; --", opts), null);
});

test('superseded_by names the newest later rollout of the app, across incarnations', async () => {
  const a = await rollout('api', 1, 1, [], 50);
  const b = await rollout('api', 1, 2, [], 40);
  const other = await rollout('other', 1, 9, [], 30);
  const afterDelete = await rollout('api', 2, 1, [], 20);
  const by = async (id: string) => (await getRolloutProgress(db, id, opts))!.superseded_by;
  assert.is(await by(a), afterDelete);
  assert.is(await by(b), afterDelete);
  assert.is(await by(afterDelete), null);
  assert.is(await by(other), null);
});

test('listRollouts: newest first, paged with `before`, each with its summary', async () => {
  for (const h of ['l1', 'l2']) await host(h, 1, ['list']);
  const ids: string[] = [];
  for (let rev = 1; rev <= 5; rev++) ids.push(await rollout('list', 1, rev, ['l1', 'l2'], 100 - rev));
  await result(ids[4]!, 'l1', 'applied', 100, 1);
  await result(ids[4]!, 'l2', 'failed', 100, 1, 'boom');
  await result(ids[0]!, 'l1', 'superseded', 0, 1);

  const first = await listRollouts(db, 'list', { ...opts, limit: 2 });
  rolloutListSchema.parse(first);
  assert.equal(
    first.rollouts.map((r) => r.revision),
    [5, 4],
  );
  assert.equal(
    { applied: first.rollouts[0]!.applied, failed: first.rollouts[0]!.failed, complete: first.rollouts[0]!.complete },
    { applied: 1, failed: 1, complete: true },
  );
  assert.equal({ pending: first.rollouts[1]!.pending, superseded_by: first.rollouts[1]!.superseded_by }, { pending: 2, superseded_by: ids[4] });
  const second = await listRollouts(db, 'list', { ...opts, limit: 2, before: first.next! });
  assert.equal(
    second.rollouts.map((r) => r.revision),
    [3, 2],
  );
  const third = await listRollouts(db, 'list', { ...opts, limit: 2, before: second.next! });
  assert.equal(
    third.rollouts.map((r) => r.revision),
    [1],
  );
  assert.is(third.next, null);
  assert.equal({ superseded: third.rollouts[0]!.superseded, pending: third.rollouts[0]!.pending }, { superseded: 1, pending: 1 });

  assert.equal(await listRollouts(db, 'nope', opts), { rollouts: [], next: null });
  try {
    await listRollouts(db, 'list', { ...opts, before: 'garbage' });
    assert.unreachable('a malformed cursor is rejected');
  } catch (err) {
    assert.instance(err, QueryInputError);
    assert.is((err as QueryInputError).field, 'before');
  }
});

test('listHosts / getHost / countHosts: online from last_seen and interval, filters and paging', async () => {
  await host('zz-on-1', 1, ['db', 'cache']);
  await host('zz-on-2', 14, ['db']);
  await host('zz-off-1', 16, ['db']);
  const dbHosts = await listHosts(db, { ...opts, app: 'db' });
  hostListSchema.parse(dbHosts);
  assert.equal(
    dbHosts.hosts.map((h) => [h.id, h.status]),
    [
      ['zz-off-1', 'offline'],
      ['zz-on-1', 'online'],
      ['zz-on-2', 'online'],
    ],
  );
  assert.equal(
    (await listHosts(db, { ...opts, app: 'db', status: 'offline' })).hosts.map((h) => h.id),
    ['zz-off-1'],
  );
  assert.equal(
    (await listHosts(db, { ...opts, app: 'cache', status: 'online' })).hosts.map((h) => h.id),
    ['zz-on-1'],
  );

  const page1 = await listHosts(db, { ...opts, app: 'db', limit: 2 });
  assert.equal(
    page1.hosts.map((h) => h.id),
    ['zz-off-1', 'zz-on-1'],
  );
  const page2 = await listHosts(db, { ...opts, app: 'db', limit: 2, after: page1.next! });
  assert.equal(
    page2.hosts.map((h) => h.id),
    ['zz-on-2'],
  );
  assert.is(page2.next, null);

  const h = await getHost(db, 'zz-on-1', opts);
  hostSchema.parse(h);
  assert.equal(h!.apps, ['db', 'cache']);
  assert.equal(h!.running[0], { app: 'db', incarnation: 1, revision: 1, containers: [{ id: 'c1', name: 'db-0', state: 'running' }] });
  assert.is(h!.last_seen, ago(1).toISOString());
  assert.is(await getHost(db, 'nobody', opts), null);

  const all = await listHosts(db, { ...opts, limit: 1000 });
  const counts = await countHosts(db, opts);
  assert.is(counts.online + counts.offline, all.hosts.length);
  assert.is(counts.offline, all.hosts.filter((x) => x.status === 'offline').length);
  assert.ok(counts.offline > 0 && counts.online > 0);
});

test.after(async () => {
  await db.destroy();
  await tdb.drop();
});

test.run();
