import { createUser } from '@nats-io/nkeys';
import { createBusSetup } from '@nebula/bus-auth';
import { joinTokenCreateSchema } from '@nebula/contracts';
import { createDb, createTestDatabase, type Database, type Kysely, migrateToLatest, sql } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { HostBus } from '../src/hosts/host-bus.ts';
import { createHostEnrolment, type HostEnrolment } from '../src/hosts/host-enrolment.ts';
import { RevocationPusher } from '../src/hosts/revocation-pusher.ts';
import { silentLog } from './helpers.ts';

/**
 * A fleet joining at once: while NATS makes a host's consumers, its join holds no database
 * connection. Against the real PostgreSQL with a pool of ONE connection and a bus whose consumer
 * calls wait on a gate: a second join and a plain query get through while the first join waits on
 * NATS (a join that held its transaction across the NATS calls would hold the only connection).
 */
const test = suite('joins and database connections');

let drop: () => Promise<void>;
let db: Kysely<Database>;
let enrolment: HostEnrolment;
let tokenText: string;
const calls: string[] = [];
let open: () => void = () => undefined;
const gate = new Promise<void>((r) => {
  open = r;
});

const bus: HostBus = {
  async ensureConsumers(hostId) {
    calls.push(hostId);
    await gate;
  },
  async deleteConsumers() {},
  async ensureGroupConsumer() {},
  async deleteGroupConsumer() {},
  async pushRevocations() {},
};

test.before(async () => {
  const tdb = await createTestDatabase();
  drop = tdb.drop;
  db = createDb<Database>(tdb.url, 1, { connectTimeoutMs: 10_000 });
  await migrateToLatest(db);
  const { keys } = await createBusSetup();
  enrolment = createHostEnrolment({
    db,
    bus,
    keys,
    revocations: new RevocationPusher({ db, bus, log: silentLog }),
    log: silentLog,
    publicNatsUrl: 'nats://127.0.0.1:4222',
  });
  const created = await enrolment.createToken(joinTokenCreateSchema.parse({ ttl_seconds: 600, uses: 2 }), 'admin', 'http://127.0.0.1');
  tokenText = created.token;
});

test.after(async () => {
  open();
  await db.destroy();
  await drop();
});

test('two joins reach NATS at once and a query answers meanwhile, with one database connection', async () => {
  const joinAs = (hostId: string) => enrolment.join({ token: tokenText, host_id: hostId, public_key: createUser().getPublicKey(), apps: ['web'] });
  const first = joinAs('h-1');
  await waitFor('the first join at NATS', () => calls.includes('h-1'), 10_000);
  const second = joinAs('h-2');
  await waitFor('the second join at NATS while the first waits there', () => calls.includes('h-2'), 10_000);
  const r = await sql<{ n: number }>`select count(*)::int as n from host_credentials`.execute(db);
  assert.is(r.rows[0]?.n, 0, 'nothing is written before the consumers are made');
  open();
  const [a, b] = await Promise.all([first, second]);
  assert.equal([a.host_id, b.host_id], ['h-1', 'h-2']);
  const left = await db.selectFrom('join_tokens').select('uses_left').executeTakeFirstOrThrow();
  assert.is(left.uses_left, 0);
});

test.run();
