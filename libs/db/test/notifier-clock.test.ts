import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createTestDatabase,
  type Database,
  getRolloutProgress,
  type Kysely,
  kyselyFor,
  listHosts,
  migrateToLatest,
  NOTIFIER_CLOCK_SLACK_SECONDS,
  touchNotifierClock,
} from '../src/index.ts';

// Heartbeats reach the database only through the notifier: while it is down, hosts are judged at its
// last sign of life, not by the wall clock.
const tdb = await createTestDatabase();
const db: Kysely<Database> = kyselyFor<Database>(tdb.url);
await migrateToLatest(db);

const base = Date.now();
const at = (s: number) => new Date(base + s * 1000);
const opts = (nowSeconds: number) => ({ offlineAfterMissed: 3, now: at(nowSeconds) });

await db
  .insertInto('hosts')
  .values({ id: 'h1', apps: ['web'], running: '[]', cores: 2, memory_mb: 1024, worker_version: 'x', heartbeat_interval_seconds: 5, last_seen: at(0) })
  .execute();
const rolloutId = randomUUID();
await db
  .insertInto('rollouts')
  .values({ id: rolloutId, app: 'web', incarnation: '1', revision: 1, action: 'update', expected_hosts: ['h1'], created_at: at(0), published_at: at(0) })
  .execute();

test('without a notifier clock, hosts are judged by the time given', async () => {
  assert.is((await listHosts(db, opts(10))).hosts[0]?.status, 'online');
  assert.is((await listHosts(db, opts(16))).hosts[0]?.status, 'offline', 'three 5 s heartbeats missed');
  const p = await getRolloutProgress(db, rolloutId, opts(16));
  assert.is(p?.offline, 1);
});

test('hosts are not judged past the notifier clock: a stopped notifier does not make the fleet offline', async () => {
  await touchNotifierClock(db);
  const aliveAt = (await db.selectFrom('notifier_clock').select('alive_at').executeTakeFirstOrThrow()).alive_at;
  const frozen = (aliveAt.getTime() - base) / 1000;
  // An hour later the host's last heartbeat is still within three intervals of the notifier's last sign of life.
  const later = await listHosts(db, opts(3600));
  assert.is(later.hosts[0]?.status, 'online');
  const p = await getRolloutProgress(db, rolloutId, opts(3600));
  assert.is(p?.pending, 1, 'still waited for');
  assert.is(p?.complete, false);
  // Once the notifier is alive past the host's silence, the host is offline.
  await db
    .updateTable('notifier_clock')
    .set({ alive_at: at(60) })
    .execute();
  assert.is((await listHosts(db, opts(3600))).hosts[0]?.status, 'offline');
  assert.ok(frozen < 15 - NOTIFIER_CLOCK_SLACK_SECONDS, 'the test ran within the host window');
});

test.after(async () => {
  await db.destroy();
  await tdb.drop();
});

test.run();
