import type { NatsConnection } from '@nats-io/transport-node';
import { keyFromSeed } from '@nebula/bus-auth';
import { appConfigSchema, subjects } from '@nebula/contracts';
import { changeApp, createApp, migrateToLatest, sql } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { OutboxRelay, type Publisher, relaySession, selectRound } from '../src/db/outbox-relay.ts';
import { planRound } from '../src/db/outbox-round.ts';
import { jetStreamPublisher, PublishError } from '../src/publisher.ts';
import { natsConnect, silentLog, startEnv, streamMessages, type TestEnv, uniqueName } from './helpers.ts';

/**
 * The relay in rounds against a real PostgreSQL and a real nats-server: several subjects' chains go
 * out concurrently, each subject's rows one after the other's ack, in outbox order; a transient
 * failure in the middle of a chain holds back that subject only, whose rows go out later in order.
 */
const test = suite('outbox relay rounds');
let env: TestEnv;
let publisher: Publisher;
let nc: NatsConnection;
const opts = { actor: 'alice', offlineAfterMissedHeartbeats: 3 };

test.before(async () => {
  env = await startEnv();
  await migrateToLatest(env.db);
  // The relay's real publisher, on a connection with the api's own rights (as in the API process).
  nc = await natsConnect(env.nats, 'api');
  publisher = jetStreamPublisher(nc, keyFromSeed(env.nats.keys.message_signing_seed));
});
test.after(async () => {
  await nc.close();
  await env.close();
});

/** Apps created, then changed `changes` times each, while no relay runs: their rows wait in the outbox. */
async function appsWithBacklog(count: number, changes: number): Promise<string[]> {
  const names = Array.from({ length: count }, () => uniqueName('round'));
  for (const name of names) await createApp(env.db, name, appConfigSchema.parse({ docker_image: 'nginx:1' }), opts);
  for (let i = 0; i < changes; i++) {
    for (const name of names) {
      const config = appConfigSchema.parse({ docker_image: 'nginx:1', env_vars: { V: String(i) } });
      await changeApp(env.db, name, () => ({ action: 'update', config }), opts);
    }
  }
  return names;
}

async function pending(subject?: string): Promise<number> {
  let q = env.db.selectFrom('outbox').select(env.db.fn.countAll<string>().as('n')).where('published_at', 'is', null).where('dead_at', 'is', null);
  if (subject !== undefined) q = q.where('subject', '=', subject);
  return Number((await q.executeTakeFirstOrThrow()).n);
}

async function revisionsInStream(name: string): Promise<number[]> {
  return (await streamMessages(env.nc, name)).map((m) => m.revision);
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test('many rows of several apps: all published, each app in outbox order, apps concurrently and each app one row at a time', async () => {
  const CHANGES = 24;
  const names = await appsWithBacklog(6, CHANGES);
  // In flight at once, overall and per subject: a row goes out only after its subject's previous ack.
  let inFlight = 0;
  let maxInFlight = 0;
  const perSubject = new Map<string, number>();
  let overlapped: string | null = null;
  const relay = new OutboxRelay({
    databaseUrl: env.dbUrl,
    log: silentLog,
    lockPollMs: 20,
    pollMs: 50,
    // Fewer subjects and rows per round than the backlog: several rounds, each a part of it.
    subjectsPerRound: 4,
    rowsPerSubject: 7,
    publisher: {
      async publish(subject, data, msgId) {
        const n = (perSubject.get(subject) ?? 0) + 1;
        if (n > 1) overlapped = subject;
        perSubject.set(subject, n);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          await publisher.publish(subject, data, msgId);
        } finally {
          inFlight--;
          perSubject.set(subject, (perSubject.get(subject) ?? 1) - 1);
        }
      },
    },
  });
  relay.start();
  try {
    await waitFor('the backlog published', async () => (await pending()) === 0, 30_000);
  } finally {
    await relay.stop();
  }
  assert.is(overlapped, null, 'two rows of one subject were in flight at once');
  assert.ok(maxInFlight > 1, 'subjects went out concurrently');
  assert.ok(maxInFlight <= 4, `at most subjectsPerRound in flight (${maxInFlight})`);
  assert.is(relay.published, names.length * (CHANGES + 1));
  // Stream order is the outbox order, per app: revisions 1 (create) to 25, each once.
  for (const name of names) assert.equal(await revisionsInStream(name), upTo(CHANGES + 1), name);
  const unpublishedRollouts = await env.db.selectFrom('rollouts').select('id').where('app', 'in', names).where('published_at', 'is', null).execute();
  assert.equal(unpublishedRollouts, [], 'every rollout is marked published');
});

test("a transient failure in the middle of one app's chain: the other apps go on; that app's rows go out later, in order", async () => {
  const CHANGES = 9;
  const [failing = '', ...others] = await appsWithBacklog(3, CHANGES);
  const FAILS_AT = 4;
  let blocked = true;
  let failures = 0;
  const relay = new OutboxRelay({
    databaseUrl: env.dbUrl,
    log: silentLog,
    lockPollMs: 20,
    pollMs: 50,
    maxBackoffMs: 200,
    publisher: {
      async publish(subject, data, msgId) {
        const revision = (JSON.parse(new TextDecoder().decode(data)) as { revision: number }).revision;
        if (blocked && subject === subjects.app(failing) && revision === FAILS_AT) {
          failures++;
          throw new PublishError(`publish to ${subject} failed`, true);
        }
        await publisher.publish(subject, data, msgId);
      },
    },
  });
  relay.start();
  try {
    // While the failing app's fourth row keeps failing, the other apps are published in full, and
    // the failing app up to the row before it (its rows behind stay pending, none skipped).
    await waitFor(
      'the other apps published, the failing app held at its failing row',
      async () => {
        for (const name of others) if ((await pending(subjects.app(name))) > 0) return false;
        return failures > 0 && (await pending(subjects.app(failing))) === CHANGES + 1 - (FAILS_AT - 1);
      },
      20_000,
    );
    for (const name of others) assert.equal(await revisionsInStream(name), upTo(CHANGES + 1), name);
    assert.equal(await revisionsInStream(failing), upTo(FAILS_AT - 1));
    const held = await env.db
      .selectFrom('rollouts')
      .select('revision')
      .where('app', '=', failing)
      .where('published_at', 'is', null)
      .orderBy('revision')
      .execute();
    assert.equal(
      held.map((r) => r.revision),
      upTo(CHANGES + 1).filter((r) => r >= FAILS_AT),
    );

    blocked = false;
    await waitFor('the failing app published once it can be', async () => (await pending()) === 0, 20_000);
  } finally {
    await relay.stop();
  }
  assert.equal(await revisionsInStream(failing), upTo(CHANGES + 1), 'in order, each once');
  assert.is(relay.deadLettered, 0);
});

test('the round query takes the rows planRound says, on any outbox', async () => {
  const client = relaySession(env.dbUrl, silentLog);
  await client.connect();
  const SUBJECTS = ['apps.q1', 'apps.q2', 'apps.q3', 'groups.q4', 'apps.q5'];
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ subject: fc.constantFrom(...SUBJECTS), state: fc.constantFrom('pending', 'pending', 'published', 'dead') }), {
          maxLength: 40,
        }),
        fc.subarray(SUBJECTS),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 8 }),
        async (rows, waitingList, maxSubjects, rowsPerSubject) => {
          await env.db.deleteFrom('outbox').execute();
          const inserted =
            rows.length === 0
              ? []
              : await env.db
                  .insertInto('outbox')
                  .values(
                    rows.map((r, i) => ({
                      subject: r.subject,
                      msg_id: `m-${i}`,
                      payload: JSON.stringify({ n: i }),
                      published_at: r.state === 'published' ? sql<Date>`now()` : null,
                      dead_at: r.state === 'dead' ? sql<Date>`now()` : null,
                    })),
                  )
                  .returning(['id', 'subject', 'published_at', 'dead_at'])
                  .execute();
          const waiting = new Set(waitingList);
          const limits = { maxSubjects, rowsPerSubject };
          const got = await selectRound(client, waiting, limits);
          const want = planRound(
            inserted.filter((r) => r.published_at === null && r.dead_at === null).map((r) => ({ id: String(r.id), subject: r.subject })),
            waiting,
            limits,
          );
          assert.equal(
            got.map((c) => c.map((r) => r.id)),
            want.map((c) => c.map((r) => r.id)),
          );
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await env.db.deleteFrom('outbox').execute();
    await client.end();
  }
});

test.run();
