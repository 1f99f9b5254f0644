import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createDb, createTestDatabase, DatabaseUnavailableError, poolConfig, unavailableError } from '../src/index.ts';

/**
 * Deadlines of database calls against the real PostgreSQL (a black-holed server is covered by the
 * API's db-outage test, through a proxy): statement timeout, the bounded waiters' queue, a session
 * the server ends for idling in a transaction.
 */
const FAST = { connectTimeoutMs: 1000, statementTimeoutMs: 300, queryTimeoutMs: 2000, idleInTransactionTimeoutMs: 300, maxWaiting: 1 };

function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => null,
    (e: unknown) => e,
  );
}

test('pool settings carry every deadline; the query timeout defaults to the statement timeout + 2 s', () => {
  const c = poolConfig('postgres://x@h/db', 3, { statementTimeoutMs: 1000 });
  assert.equal(
    [c.max, c.connectionTimeoutMillis, c.statement_timeout, c.query_timeout, c.idle_in_transaction_session_timeout, c.keepAlive, c.keepAliveInitialDelayMillis],
    [3, 5000, 1000, 3000, 30_000, true, 10_000],
  );
  assert.is(poolConfig('postgres://x@h/db', 1, { keepAliveMs: 0 }).keepAlive, false);
});

test('a statement over the statement timeout fails as DatabaseUnavailableError; the connection serves the next query', async () => {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url, 1, FAST);
  try {
    const err = await rejection(sql`select pg_sleep(5)`.execute(db));
    assert.instance(err, DatabaseUnavailableError);
    assert.is((err as DatabaseUnavailableError).reason, 'statement-timeout');
    assert.is((err as DatabaseUnavailableError).retryable, true);
    assert.is(((err as Error).cause as { code?: string }).code, '57014');
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
    assert.is(rows[0]!.one, 1);
  } finally {
    await db.destroy();
    await tdb.drop();
  }
});

test('callers beyond the bounded queue of waiters are refused at once; waiters past the connect timeout fail', async () => {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url, 1, { ...FAST, statementTimeoutMs: 10_000, queryTimeoutMs: 12_000, idleInTransactionTimeoutMs: 10_000 });
  try {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let taken!: () => void;
    const isTaken = new Promise<void>((r) => (taken = r));
    const holder = db.connection().execute(async () => {
      taken();
      await held;
    });
    await isTaken;
    const waiter = rejection(sql`select 1`.execute(db));
    const refused = await rejection(sql`select 1`.execute(db));
    assert.instance(refused, DatabaseUnavailableError);
    assert.is((refused as DatabaseUnavailableError).reason, 'pool-full');
    const waited = await waiter;
    assert.instance(waited, DatabaseUnavailableError, 'the waiter gives up after the connect timeout');
    release();
    await holder;
    assert.is((await sql<{ one: number }>`select 1 as one`.execute(db)).rows[0]!.one, 1);
  } finally {
    await db.destroy();
    await tdb.drop();
  }
});

test('a session idle in a transaction past the timeout is ended by the server: no crash, the next call reconnects', async () => {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url, 1, FAST);
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash);
  try {
    const err = await rejection(
      db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        await new Promise((r) => setTimeout(r, 1000));
        await sql`select 2`.execute(trx);
      }),
    );
    assert.instance(err, DatabaseUnavailableError);
    assert.equal(crashes, []);
    assert.is((await sql<{ one: number }>`select 1 as one`.execute(db)).rows[0]!.one, 1);
  } finally {
    process.off('uncaughtException', onCrash);
    await db.destroy();
    await tdb.drop();
  }
});

test('errors that say the query is wrong pass unchanged', async () => {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url, 1, FAST);
  try {
    const err = await rejection(sql`select * from no_such_table`.execute(db));
    assert.not.instance(err, DatabaseUnavailableError);
    assert.is((err as { code?: string }).code, '42P01');
    assert.is(unavailableError(Object.assign(new Error('duplicate key'), { code: '23505' }), 'query'), null);
    assert.instance(
      unavailableError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'connect'),
      DatabaseUnavailableError,
    );
  } finally {
    await db.destroy();
    await tdb.drop();
  }
});

test.run();
