import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createDb, createTestDatabase, DatabaseUnavailableError, prepared } from '../src/index.ts';

const tdb = await createTestDatabase();
const db = createDb(tdb.url, 1);
await sql`create table things (id int primary key, name text)`.execute(db);
await sql`insert into things values (1, 'one'), (2, 'two')`.execute(db);
const statements = async () =>
  (await sql<{ statement: string }>`select statement from pg_prepared_statements order by prepare_time`.execute(db)).rows.map((r) => r.statement);
const byId = (id: number) => db.executeQuery(prepared(sql<{ id: number; name: string }>`select * from things where id = ${id}`.compile(db)));

test('a marked statement is prepared once on the connection and runs with each call’s values', async () => {
  assert.equal(await statements(), []);
  assert.equal((await byId(1)).rows, [{ id: 1, name: 'one' }]);
  assert.equal((await byId(2)).rows, [{ id: 2, name: 'two' }]);
  assert.equal(await statements(), ['select * from things where id = $1']);
  // An ordinary statement is not.
  await sql`select * from things where id = ${1}`.execute(db);
  assert.is((await statements()).length, 1);
});

test('the schema changed under a prepared statement: 503-worthy once, the connection replaced, then it works', async () => {
  const pid = async () => (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]?.pid;
  const before = await pid();
  await sql`alter table things add column size int`.execute(db);
  try {
    await byId(1);
    assert.unreachable('the stale statement ran');
  } catch (err) {
    assert.instance(err, DatabaseUnavailableError);
    assert.is((err as DatabaseUnavailableError).reason, 'connection-lost');
  }
  assert.is.not(await pid(), before, 'a new connection');
  assert.equal((await byId(1)).rows, [{ id: 1, name: 'one', size: null }]);
});

test.after(async () => {
  await db.destroy();
  await tdb.drop();
});

test.run();
