import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createDb, createTestDatabase } from '../src/index.ts';

test('idle connections killed by the server (a restart) do not crash the process; the next query reconnects', async () => {
  const tdb = await createTestDatabase();
  const idleErrors: Error[] = [];
  const db = createDb(tdb.url, 2, { onIdleError: (err) => idleErrors.push(err) });
  const admin = createDb(tdb.url, 1);
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash);
  try {
    const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db);
    const pid = rows[0]!.pid;
    // The connection is idle in the pool now; the server ends it, as a restart would.
    await sql`select pg_terminate_backend(${pid})`.execute(admin);
    for (let i = 0; i < 50 && idleErrors.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(crashes, []);
    assert.is(idleErrors.length, 1, 'the loss was reported');
    const again = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db);
    assert.is.not(again.rows[0]!.pid, pid, 'a new connection');
  } finally {
    process.off('uncaughtException', onCrash);
    await db.destroy();
    await admin.destroy();
    await tdb.drop();
  }
});

test.run();
