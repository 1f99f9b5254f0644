import { randomUUID } from 'node:crypto';
import { createDb, createTestDatabase, type Database, type Kysely, migrateToLatest, sql } from '@nebula/db';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pruneExpired, RETENTION_LOCK_ID, RetentionJob } from '../src/db/retention.ts';
import { silentLog } from './helpers.ts';

/**
 * Which rows retention deletes, against the real PostgreSQL: hand-made rows of every kind on both
 * sides of the cutoff, the advisory lock that keeps replicas from pruning together, batches, and a
 * property: whatever the rows, exactly the expired ones go.
 */
const test = suite('retention');
let drop: () => Promise<void>;
let db: Kysely<Database>;

test.before(async () => {
  const tdb = await createTestDatabase();
  drop = tdb.drop;
  db = createDb(tdb.url, 3);
  await migrateToLatest(db);
});

test.after(async () => {
  await db?.destroy();
  await drop?.();
});

test.before.each(async () => {
  await sql`truncate apps, app_revisions, rollouts, rollout_waves, rollout_hosts, outbox, hosts, cron_jobs, cron_job_runs, host_prunes restart identity`.execute(
    db,
  );
});

const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000);

async function app(name: string, revision: number, deleted = false): Promise<string> {
  const row = await db
    .insertInto('apps')
    .values({ name, revision, config: '{}', updated_at: new Date(), deleted_at: deleted ? daysAgo(40) : null })
    .returning('incarnation')
    .executeTakeFirstOrThrow();
  return row.incarnation;
}

async function rollout(appName: string, incarnation: string, revision: number, ageDays: number, published: boolean): Promise<string> {
  const id = randomUUID();
  const at = daysAgo(ageDays);
  await db
    .insertInto('rollouts')
    .values({ id, app: appName, incarnation, revision, action: 'update', created_at: at, published_at: published ? at : null })
    .execute();
  return id;
}

async function result(rolloutId: string, host: string): Promise<void> {
  await db
    .insertInto('rollout_hosts')
    .values({ rollout_id: rolloutId, host, status: 'applied', containers: '[]', pull_ms: 0, apply_ms: 0, reported_at: new Date() })
    .execute();
}

async function outbox(ageDays: number, published: boolean): Promise<string> {
  const at = daysAgo(ageDays);
  const row = await db
    .insertInto('outbox')
    .values({ subject: 'apps.x', msg_id: randomUUID(), payload: '{}', created_at: at, published_at: published ? at : null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

async function host(id: string, ageDays: number): Promise<void> {
  await db
    .insertInto('hosts')
    .values({ id, apps: [], running: '[]', cores: 1, memory_mb: 1, worker_version: 't', heartbeat_interval_seconds: 10, last_seen: daysAgo(ageDays) })
    .execute();
}

async function ids(table: 'rollouts' | 'outbox' | 'hosts'): Promise<string[]> {
  const r = await sql<{ id: string }>`select id::text as id from ${sql.table(table)} order by id`.execute(db);
  return r.rows.map((x) => x.id);
}

test('expired rows go; unpublished rows, recent rows and the rollout of a live app current revision stay', async () => {
  const web = await app('web', 3);
  const gone = await app('gone', 2, true);
  const r1 = await rollout('web', web, 1, 40, true); // expired
  const r2 = await rollout('web', web, 2, 40, false); // never published: kept
  const r3 = await rollout('web', web, 3, 40, true); // current revision of a live app: kept
  const g2 = await rollout('gone', gone, 2, 40, true); // a deleted app's last: expired
  const fresh = await rollout('web', web, 2, 5, true); // recent
  await result(r1, 'a');
  await result(r1, 'b');
  await result(r3, 'a');
  const o1 = await outbox(40, true);
  const o2 = await outbox(40, false);
  const o3 = await outbox(5, true);
  await host('old', 40);
  await host('recent', 29);

  const counts = await pruneExpired(db, { retentionDays: 30 });
  assert.equal(counts, { outbox: 1, rollouts: 2, rollout_hosts: 2, hosts: 1, cron_job_runs: 0, cron_jobs: 0, host_prunes: 0 });
  assert.equal(await ids('rollouts'), [r2, r3, fresh].sort());
  assert.not.ok((await ids('rollouts')).includes(r1) || (await ids('rollouts')).includes(g2));
  const results = await db.selectFrom('rollout_hosts').select(['rollout_id', 'host']).execute();
  assert.equal(results, [{ rollout_id: r3, host: 'a' }]);
  assert.equal(
    await ids('outbox'),
    [o2, o3].sort((a, b) => Number(a) - Number(b)),
  );
  assert.not.ok((await ids('outbox')).includes(o1));
  assert.equal(await ids('hosts'), ['recent']);

  assert.equal(
    await pruneExpired(db, { retentionDays: 30 }),
    { outbox: 0, rollouts: 0, rollout_hosts: 0, hosts: 0, cron_job_runs: 0, cron_jobs: 0, host_prunes: 0 },
    'nothing left',
  );
});

async function cronJob(name: string, deletedDaysAgo: number | null): Promise<string> {
  const row = await db
    .insertInto('cron_jobs')
    .values({ name, cron_job_id: 1, config: '{}', deleted_at: deletedDaysAgo === null ? null : daysAgo(deletedDaysAgo) })
    .returning('incarnation')
    .executeTakeFirstOrThrow();
  return row.incarnation;
}

async function cronRun(incarnation: string, ageDays: number): Promise<void> {
  await db
    .insertInto('cron_job_runs')
    .values({ incarnation, cron_job_id: 1, host_id: 'h', started_at: daysAgo(ageDays) })
    .execute();
}

test('cron job runs older than the cutoff go, and jobs deleted before it with their runs; live jobs stay', async () => {
  const live = await cronJob('nightly', null);
  const deleted = await cronJob('weekly', 40);
  const recentlyDeleted = await cronJob('hourly', 5);
  await cronRun(live, 40); // expired
  await cronRun(live, 5); // recent
  await cronRun(deleted, 5); // goes with its job
  await cronRun(recentlyDeleted, 5);
  const counts = await pruneExpired(db, { retentionDays: 30 });
  assert.is(counts?.cron_job_runs, 1);
  assert.is(counts?.cron_jobs, 1);
  const jobs = await db.selectFrom('cron_jobs').select('name').orderBy('name').execute();
  assert.equal(
    jobs.map((j) => j.name),
    ['hourly', 'nightly'],
  );
  const runs = await db.selectFrom('cron_job_runs').select('incarnation').orderBy('incarnation').execute();
  assert.equal(
    runs.map((r) => r.incarnation),
    [live, recentlyDeleted],
  );
});

test('prune reports older than the cutoff go; recent ones stay', async () => {
  const prune = (host: string, pruneId: number, ageDays: number) =>
    db
      .insertInto('host_prunes')
      .values({ host, device_group: 'g', prune_id: pruneId, bytes_freed: 10, images_removed: [], error: null, reported_at: daysAgo(ageDays) })
      .execute();
  await prune('h1', 1, 40);
  await prune('h2', 1, 40);
  await prune('h1', 2, 5);
  const counts = await pruneExpired(db, { retentionDays: 30 });
  assert.is(counts?.host_prunes, 2);
  const left = await db.selectFrom('host_prunes').select(['host', 'prune_id']).execute();
  assert.equal(left, [{ host: 'h1', prune_id: 2 }]);
});

test('one replica at a time: while another session holds the lock, a run prunes nothing', async () => {
  await host('old', 40);
  await db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${RETENTION_LOCK_ID})`.execute(conn);
    try {
      assert.is(await pruneExpired(db, { retentionDays: 30 }), null);
      assert.equal(await ids('hosts'), ['old']);
    } finally {
      await sql`select pg_advisory_unlock(${RETENTION_LOCK_ID})`.execute(conn);
    }
  });
  assert.equal((await pruneExpired(db, { retentionDays: 30 }))?.hosts, 1);
});

test('a backlog is deleted in batches within one run', async () => {
  for (let i = 0; i < 7; i++) await outbox(40, true);
  const job = new RetentionJob(db, silentLog, { retentionDays: 30, batchSize: 2 });
  const first = await pruneExpired(db, { retentionDays: 30, batchSize: 2 });
  assert.is(first?.outbox, 2, 'one batch is bounded');
  await job.runOnce();
  assert.equal(await ids('outbox'), []);
  assert.is(job.pruned.outbox, 5);
});

test('the API server prunes on its own timer and counts it in /metrics', async () => {
  const { startEnv, basicHeader } = await import('./helpers.ts');
  const env = await startEnv();
  try {
    await migrateToLatest(env.db);
    await env.db
      .insertInto('hosts')
      .values({ id: 'long-gone', apps: [], running: '[]', cores: 1, memory_mb: 1, worker_version: 't', heartbeat_interval_seconds: 10, last_seen: daysAgo(3) })
      .execute();
    const api = await env.startApi({ server: { retention: { retentionDays: 2, intervalMs: 200 } } });
    const { waitFor } = await import('@nebula/test-kit');
    await waitFor('the old host pruned', async () => (await env.db.selectFrom('hosts').select('id').execute()).length === 0, 10_000, 100);
    const metrics = await (await fetch(`${api.url}/metrics`, { headers: { authorization: basicHeader() } })).text();
    assert.match(metrics, /nebula_api_retention_pruned\{table="hosts",service="api"\} 1/);
  } finally {
    await env.close();
  }
});

test('property: whatever the rows, exactly the expired ones are deleted', async () => {
  const rolloutArb = fc.record({
    ageDays: fc.integer({ min: 0, max: 60 }),
    published: fc.boolean(),
    current: fc.boolean(),
    results: fc.integer({ min: 0, max: 2 }),
  });
  const outboxArb = fc.record({ ageDays: fc.integer({ min: 0, max: 60 }), published: fc.boolean() });
  await fc.assert(
    fc.asyncProperty(
      fc.array(rolloutArb, { maxLength: 8 }),
      fc.array(outboxArb, { maxLength: 6 }),
      fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 5 }),
      fc.integer({ min: 1, max: 45 }),
      async (rollouts, rows, hostAges, days) => {
        await sql`truncate apps, app_revisions, rollouts, rollout_waves, rollout_hosts, outbox, hosts restart identity`.execute(db);
        const keep = new Set<string>();
        // Off the cutoff by at least an hour either way: `now()` moves between insert and prune.
        const away = (age: number) => Math.abs(age - days) < 0.05;
        for (const [i, r] of rollouts.entries()) {
          const age = away(r.ageDays) ? r.ageDays + 0.5 : r.ageDays;
          const inc = await app(`a${i}`, r.current ? 1 : 2);
          const id = await rollout(`a${i}`, inc, 1, age, r.published);
          for (let h = 0; h < r.results; h++) await result(id, `h${h}`);
          if (age < days || !r.published || r.current) keep.add(`rollout:${id}`);
        }
        for (const o of rows) {
          const age = away(o.ageDays) ? o.ageDays + 0.5 : o.ageDays;
          const id = await outbox(age, o.published);
          if (age < days || !o.published) keep.add(`outbox:${id}`);
        }
        for (const [i, a] of hostAges.entries()) {
          const age = away(a) ? a + 0.5 : a;
          await host(`host${i}`, age);
          if (age < days) keep.add(`host:host${i}`);
        }
        await pruneExpired(db, { retentionDays: days });
        const left = new Set([
          ...(await ids('rollouts')).map((id) => `rollout:${id}`),
          ...(await ids('outbox')).map((id) => `outbox:${id}`),
          ...(await ids('hosts')).map((id) => `host:${id}`),
        ]);
        assert.equal([...left].sort(), [...keep].sort());
        const orphans = await sql<{
          n: number;
        }>`select count(*)::int as n from rollout_hosts h where not exists (select 1 from rollouts r where r.id = h.rollout_id)`.execute(db);
        assert.is(orphans.rows[0]!.n, 0, 'results go with their rollout');
      },
    ),
    { numRuns: 25 },
  );
});

test.run();
