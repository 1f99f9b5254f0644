import { randomUUID } from 'node:crypto';
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
  migrateToLatest,
  onlineSql,
  sql,
} from '../src/index.ts';

// Readers judge hosts by the database's clock: a reader (the API, the notifier's gauge) whose own
// clock is off by 10 minutes sees the same hosts online as everyone else.
const tdb = await createTestDatabase();
const db: Kysely<Database> = kyselyFor<Database>(tdb.url);
await migrateToLatest(db);
const N = 3;

await sql`insert into hosts (id, apps, running, cores, memory_mb, worker_version, heartbeat_interval_seconds, last_seen)
          values ('h1', '{web}', '[]', 2, 1024, 'x', 5, now())`.execute(db);
const rolloutId = randomUUID();
await db
  .insertInto('rollouts')
  .values({ id: rolloutId, app: 'web', incarnation: '1', revision: 1, action: 'update', expected_hosts: ['h1'] })
  .execute();

/** Runs `fn` with this process's clock (Date.now and new Date()) moved by `ms`. */
async function withSkewedClock<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const Real = Date;
  class Skewed extends Real {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(Real.now() + ms);
      else super(...(args as [string]));
    }
    static override now() {
      return Real.now() + ms;
    }
  }
  globalThis.Date = Skewed as DateConstructor;
  try {
    return await fn();
  } finally {
    globalThis.Date = Real;
  }
}

for (const [label, skew] of [
  ['10 minutes behind', -600_000],
  ['10 minutes ahead', 600_000],
] as const) {
  test(`a reader whose clock is ${label} judges hosts by the database's clock`, async () => {
    const seen = await withSkewedClock(skew, async () => ({
      list: (await listHosts(db, { offlineAfterMissed: N })).hosts.map((h) => h.status),
      one: (await getHost(db, 'h1', { offlineAfterMissed: N }))?.status,
      counts: await countHosts(db, { offlineAfterMissed: N }),
      progress: await getRolloutProgress(db, rolloutId, { offlineAfterMissed: N }),
      // What the API's expected hosts query asks (services/api/src/db/apps.ts).
      expected: (
        await db
          .selectFrom('hosts')
          .select('id')
          .where(onlineSql('hosts', { n: N }))
          .execute()
      ).map((r) => r.id),
    }));
    assert.equal(seen.list, ['online']);
    assert.is(seen.one, 'online');
    assert.equal(seen.counts, { online: 1, offline: 0 });
    assert.equal(
      { pending: seen.progress?.pending, offline: seen.progress?.offline, complete: seen.progress?.complete },
      { pending: 1, offline: 0, complete: false },
    );
    assert.equal(seen.expected, ['h1']);
  });
}

test.after(async () => {
  await db.destroy();
  await tdb.drop();
});

test.run();
