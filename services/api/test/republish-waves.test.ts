import { appConfigSchema } from '@nebula/contracts';
import { changeApp, createApp, createTestDatabase, type Database, type Kysely, kyselyFor, migrateToLatest, sql } from '@nebula/db';
import { createLogger } from '@nebula/service-kit';
import { waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OutboxRelay } from '../src/db/outbox-relay.ts';

// After an APPS stream loss, an app whose rollout goes out in waves gets its newest message back as
// it was: with its wave (the hosts outside it keep the base), not a rebuilt one for every host.
const tdb = await createTestDatabase();
const db: Kysely<Database> = kyselyFor<Database>(tdb.url);
await migrateToLatest(db);
const opts = { actor: 'alice', offlineAfterMissedHeartbeats: 3 };

test('republish puts back the newest message with its wave', async () => {
  await db
    .insertInto('hosts')
    .values(
      ['a', 'b', 'c', 'd'].map((id) => ({
        id,
        apps: ['web'],
        running: '[]',
        cores: 1,
        memory_mb: 512,
        worker_version: '0',
        heartbeat_interval_seconds: 5,
        last_seen: sql<Date>`now()`,
      })),
    )
    .execute();
  await createApp(db, 'web', appConfigSchema.parse({ docker_image: 'nginx:1' }), opts);
  const config = appConfigSchema.parse({ docker_image: 'nginx:2', rollout_strategy: { waves: [25, 100] } });
  const r = await changeApp(db, 'web', () => ({ action: 'update', config }), opts);
  await db.updateTable('outbox').set({ published_at: sql<Date>`now()` }).execute();
  // The relay finds the subject missing from the (empty) stream and publishes the app's newest message again.
  const sent: Array<{ msgId: string; payload: unknown }> = [];
  const relay = new OutboxRelay({
    databaseUrl: tdb.url,
    log: createLogger('republish-test', 'silent'),
    lockPollMs: 20,
    pollMs: 20,
    publisher: {
      async publish(_subject, data, msgId) {
        sent.push({ msgId, payload: JSON.parse(new TextDecoder().decode(data)) });
      },
      storedSubjects: async () => new Set(),
    },
  });
  relay.start();
  try {
    await waitFor('the republished message', () => sent.some((m) => m.msgId.includes(':republished:')));
  } finally {
    await relay.stop();
  }
  assert.is(relay.republished, 1);
  const last = sent.find((m) => m.msgId.includes(':republished:'));
  const p = last?.payload as { v: number; rollout_id: string; wave?: { step: number; hosts: string[]; base: { revision: number } | null } };
  assert.is(p.rollout_id, r.rolloutId);
  assert.is(p.v, 2);
  assert.is(p.wave?.step, 1);
  assert.is(p.wave?.hosts.length, 1);
  assert.is(p.wave?.base?.revision, 1);
  assert.match(last?.msgId ?? '', `${r.rolloutId}:wave-1:republished:`);
});

test.after(async () => {
  await db.destroy();
  await tdb.drop();
});
test.run();
