import { type Kysely, type Migration, sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTestDatabase, kyselyFor, migrateDown, migrateToLatest, migrations, tableExists } from '../src/index.ts';

const set: Record<string, Migration> = {
  '20260101000000_widgets': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('widgets')
        .addColumn('id', 'bigserial', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('widgets').execute();
    },
  },
};

test('a migration is applied to the real PostgreSQL and rolled back', async () => {
  const tdb = await createTestDatabase();
  const db = kyselyFor(tdb.url);
  try {
    assert.equal(await migrateToLatest(db, set), ['20260101000000_widgets']);
    assert.ok(await tableExists(db, 'widgets'));
    await sql`insert into widgets (name) values ('a')`.execute(db);
    assert.equal(await migrateToLatest(db, set), [], 'nothing left to apply');
    assert.equal(await migrateDown(db, set), ['20260101000000_widgets']);
    assert.not.ok(await tableExists(db, 'widgets'));
  } finally {
    await db.destroy();
    await tdb.drop();
  }
});

test('replicas migrating at once apply each migration exactly once', async () => {
  const tdb = await createTestDatabase();
  const dbs = [kyselyFor(tdb.url), kyselyFor(tdb.url), kyselyFor(tdb.url)];
  try {
    const applied = await Promise.all(dbs.map((db) => migrateToLatest(db, set)));
    assert.equal(applied.flat(), ['20260101000000_widgets']);
  } finally {
    await Promise.all(dbs.map((db) => db.destroy()));
    await tdb.drop();
  }
});

test("the schema's own migrations apply and roll back completely", async () => {
  const tdb = await createTestDatabase();
  const db = kyselyFor(tdb.url);
  try {
    const names = await migrateToLatest(db);
    assert.equal(names, Object.keys(migrations).sort());
    for (const t of ['apps', 'app_revisions', 'rollouts', 'outbox', 'hosts', 'rollout_hosts']) assert.ok(await tableExists(db, t), t);
    for (let i = 0; i < names.length; i++) await migrateDown(db);
    for (const t of ['apps', 'outbox', 'hosts']) assert.not.ok(await tableExists(db, t), t);
  } finally {
    await db.destroy();
    await tdb.drop();
  }
});

test.run();
