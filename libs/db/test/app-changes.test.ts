import { type AppConfig, appConfigSchema, type RolloutStrategyInput } from '@nebula/contracts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ChangeTooLargeError,
  changeApp,
  createApp,
  createTestDatabase,
  type Database,
  deleteApp,
  findLiveApp,
  getLiveAppView,
  type Kysely,
  kyselyFor,
  listLiveAppNames,
  listRollouts,
  migrateToLatest,
  sql,
} from '../src/index.ts';

// A change of a live app with no rollout going out, all at once, is written in one statement after
// the row lock; any other change by the statements of `record`. Both must leave the same rows.

const tdb = await createTestDatabase();
const db: Kysely<Database> = kyselyFor<Database>(tdb.url);
await migrateToLatest(db);
const opts = { actor: 'alice', offlineAfterMissedHeartbeats: 3, reason: 'because' };
const STRATEGY: RolloutStrategyInput = { waves: [20, 100], bake_seconds: 0, max_failed_hosts: 1, on_failure: 'pause' };
const cfg = (image: string, strategy: RolloutStrategyInput | null = null): AppConfig =>
  appConfigSchema.parse({ docker_image: image, env_vars: { V: '1' }, rollout_strategy: strategy });

/** h1-h4 online, h5 offline (not expected), h6 serving another app. */
async function hosts(app: string) {
  const host = (id: string, apps: string[], online: boolean) => ({
    id: `${app}-${id}`,
    apps,
    running: '[]',
    cores: 2,
    memory_mb: 1024,
    worker_version: '0.1.0',
    heartbeat_interval_seconds: 5,
    last_seen: online ? sql<Date>`now()` : sql<Date>`now() - interval '1 hour'`,
  });
  await db
    .insertInto('hosts')
    .values([...['h4', 'h2', 'h3', 'h1'].map((h) => host(h, [app], true)), host('h5', [app], false), host('h6', ['other'], true)])
    .execute();
}

/** What a change left, with the app's name taken out of host ids, subjects and payloads. */
async function written(app: string, rolloutId: string) {
  const a = await db.selectFrom('apps').selectAll().where('name', '=', app).orderBy('incarnation', 'desc').executeTakeFirstOrThrow();
  const v = await db.selectFrom('app_revisions').selectAll().where('rollout_id', '=', rolloutId).executeTakeFirstOrThrow();
  const r = await db.selectFrom('rollouts').selectAll().where('id', '=', rolloutId).executeTakeFirstOrThrow();
  const outbox = await db.selectFrom('outbox').selectAll().where('subject', '=', `apps.${app}`).orderBy('id', 'desc').executeTakeFirstOrThrow();
  const payload = outbox.payload as Record<string, unknown>;
  assert.is(payload.rollout_id, rolloutId);
  assert.is(payload.created_at, v.created_at.toISOString(), 'the message carries the revision time');
  assert.is(a.updated_at.getTime(), v.created_at.getTime(), 'one transaction clock');
  const unname = (s: string) => s.replaceAll(app, 'APP');
  return {
    app: { revision: a.revision, config: a.config, deleted: a.deleted_at !== null },
    revision: { revision: v.revision, action: v.action, config: v.config, actor: v.actor, reason: v.reason },
    rollout: {
      revision: r.revision,
      action: r.action,
      incarnation: r.incarnation === a.incarnation,
      expected_hosts: r.expected_hosts.map(unname),
      state: r.state,
      members: r.members,
      created: r.created_at.getTime() === v.created_at.getTime(),
    },
    outbox: {
      subject: unname(outbox.subject),
      msg_id: unname(outbox.msg_id).replace(rolloutId, 'ID').replace(a.incarnation, 'N'),
      payload: { ...payload, app: 'APP', incarnation: 'N', rollout_id: 'ID', created_at: 'T' },
    },
  };
}

test('all at once: the one statement writes what the statements of a superseding change write', async () => {
  // quick: no rollout going out. slow: its waved rollout is still rolling (h1-h4 have not reported).
  for (const app of ['quick', 'slow']) {
    await hosts(app);
    await createApp(db, app, cfg('nginx:1'), opts);
  }
  await changeApp(db, 'quick', () => ({ action: 'update', config: cfg('nginx:2') }), opts);
  await changeApp(db, 'slow', () => ({ action: 'update', config: cfg('nginx:2', STRATEGY) }), opts);
  const active = await db.selectFrom('rollouts').select('state').where('app', '=', 'slow').where('state', '=', 'rolling').execute();
  assert.is(active.length, 1);

  const quick = await changeApp(db, 'quick', () => ({ action: 'update', config: cfg('nginx:3') }), opts);
  const slow = await changeApp(db, 'slow', () => ({ action: 'update', config: cfg('nginx:3') }), opts);
  assert.equal(quick.expectedHosts, ['quick-h1', 'quick-h2', 'quick-h3', 'quick-h4']);
  assert.equal(slow.expectedHosts, ['slow-h1', 'slow-h2', 'slow-h3', 'slow-h4']);

  const q = await written('quick', quick.rolloutId);
  const s = await written('slow', slow.rolloutId);
  assert.equal(q, s);
  assert.is(q.rollout.revision, 3);

  // What the change returns is what it wrote.
  const row = await db.selectFrom('apps').selectAll().where('name', '=', 'quick').executeTakeFirstOrThrow();
  assert.equal(quick.app, {
    incarnation: Number(row.incarnation),
    name: 'quick',
    revision: 3,
    config: cfg('nginx:3'),
    rolloutId: quick.rolloutId,
    updatedAt: row.updated_at,
  });
  const superseded = await db
    .selectFrom('rollouts')
    .select(['state', 'abort_reason'])
    .where('app', '=', 'slow')
    .where('revision', '=', 2)
    .executeTakeFirstOrThrow();
  assert.equal(superseded, { state: 'aborted', abort_reason: `superseded by rollout ${slow.rolloutId}` });
});

test('all at once: a delete in one statement ends the app; a message too large writes nothing', async () => {
  await hosts('gone');
  await createApp(db, 'gone', cfg('nginx:1'), opts);
  const before = await db.selectFrom('outbox').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
  try {
    await changeApp(db, 'gone', () => ({ action: 'update', config: cfg('nginx:2') }), { ...opts, maxMessageBytes: 100 });
    assert.unreachable('a message over max_payload was accepted');
  } catch (err) {
    assert.instance(err, ChangeTooLargeError);
  }
  const after = await db.selectFrom('outbox').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
  assert.is(after.n, before.n);
  assert.is((await db.selectFrom('apps').select('revision').where('name', '=', 'gone').executeTakeFirstOrThrow()).revision, 1);

  const del = await deleteApp(db, 'gone', opts);
  assert.is(del.action, 'delete');
  assert.equal(del.expectedHosts, ['gone-h1', 'gone-h2', 'gone-h3', 'gone-h4']);
  const w = await written('gone', del.rolloutId);
  assert.equal(w.app, { revision: 2, config: cfg('nginx:1'), deleted: true });
  assert.is(w.revision.action, 'delete');
  assert.not.ok((await listLiveAppNames(db)).includes('gone'));
});

test('the view of an app (one statement) is the app, its latest rollout as listed, its dead letters', async () => {
  const online = { offlineAfterMissed: 3 };
  await hosts('seen');
  await createApp(db, 'seen', cfg('nginx:1'), opts);
  const view = async (app: string) => {
    const v = await getLiveAppView(db, app, online);
    assert.ok(v, app);
    assert.equal(v.app, await findLiveApp(db, app));
    assert.equal(v.rollout, (await listRollouts(db, app, { ...online, limit: 1 })).rollouts[0]);
    return v;
  };
  assert.equal((await view('seen')).publishFailures, []);
  // Results of two hosts, one failed; then a change in waves, still rolling (its waves read too).
  const first = await db.selectFrom('rollouts').select('id').where('app', '=', 'seen').executeTakeFirstOrThrow();
  await db
    .insertInto('rollout_hosts')
    .values([
      { rollout_id: first.id, host: 'seen-h1', status: 'applied', containers: '[]', pull_ms: 10, apply_ms: 120, reported_at: sql<Date>`now()` },
      {
        rollout_id: first.id,
        host: 'seen-h2',
        status: 'failed',
        error: 'pull: no such image',
        containers: '[]',
        pull_ms: 10,
        apply_ms: 0,
        reported_at: sql<Date>`now()`,
      },
    ])
    .execute();
  assert.is((await view('seen')).rollout?.failed, 1);
  const waved = await changeApp(db, 'seen', () => ({ action: 'update', config: cfg('nginx:2', STRATEGY) }), opts);
  assert.is((await view('seen')).rollout?.waves.length, 2);
  // Dead letters, newest first; at most ten.
  for (let i = 0; i < 11; i++) await changeApp(db, 'seen', () => ({ action: 'update', config: cfg(`nginx:${i + 3}`) }), opts);
  await sql`update rollouts set publish_error = 'too large: ' || revision, publish_failed_at = now() where app = 'seen' and revision > 2`.execute(db);
  const v = await view('seen');
  assert.equal(
    v.publishFailures.map((f) => [f.revision, f.error]),
    Array.from({ length: 10 }, (_, i) => [13 - i, `too large: ${13 - i}`]),
  );
  const failedAt = await db.selectFrom('rollouts').select('publish_failed_at').where('app', '=', 'seen').where('revision', '=', 13).executeTakeFirstOrThrow();
  assert.equal(v.publishFailures[0]?.failedAt, failedAt.publish_failed_at);
  assert.is.not(v.rollout?.id, waved.rolloutId);
  assert.is(await getLiveAppView(db, 'nobody', online), null);
});

test.after(async () => {
  await db.destroy();
  await tdb.drop();
});

test.run();
