import { appConfigSchema, planWaves, type RolloutStrategyInput, rolloutProgressSchema } from '@nebula/contracts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  changeApp,
  commandRollout,
  createApp,
  createTestDatabase,
  type Database,
  findRolloutSubject,
  getRolloutProgress,
  type Kysely,
  kyselyFor,
  listRollouts,
  migrateToLatest,
  planRolloutDryRun,
  RolloutConflictError,
  rolloutMembers,
  sql,
} from '../src/index.ts';

const tdb = await createTestDatabase();
const db: Kysely<Database> = kyselyFor<Database>(tdb.url);
await migrateToLatest(db);
const opts = { actor: 'alice', offlineAfterMissedHeartbeats: 3 };
const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5'];
const STRATEGY: RolloutStrategyInput = { waves: [20, 60, 100], bake_seconds: 0, max_failed_hosts: 1, on_failure: 'rollback' };

let n = 0;
async function hosts(app: string, ids = HOSTS, offline: string[] = []) {
  await db
    .insertInto('hosts')
    .values(
      ids.map((id) => ({
        id: `${app}-${id}`,
        apps: [app],
        running: '[]',
        cores: 2,
        memory_mb: 1024,
        worker_version: '0.1.0',
        heartbeat_interval_seconds: 5,
        last_seen: offline.includes(id) ? sql<Date>`now() - interval '1 hour'` : sql<Date>`now()`,
      })),
    )
    .execute();
}
const cfg = (image: string, strategy: RolloutStrategyInput | null) => appConfigSchema.parse({ docker_image: image, rollout_strategy: strategy });
async function waved(strategy: RolloutStrategyInput = STRATEGY, offline: string[] = []) {
  const app = `app${++n}`;
  await hosts(app, HOSTS, offline);
  await createApp(db, app, cfg('nginx:1', null), opts);
  const r = await changeApp(db, app, () => ({ action: 'update', config: cfg('nginx:2', strategy) }), opts);
  return { app, id: r.rolloutId };
}
const row = (id: string) => db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const steps = async (app: string, id: string) =>
  (await db.selectFrom('outbox').select('payload').where('subject', '=', `apps.${app}`).orderBy('id').execute())
    .map((o) => o.payload as { rollout_id: string; wave?: { step: number; hosts: string[] } })
    .filter((p) => p.rollout_id === id)
    .map((p) => (p.wave ? `${p.wave.step}:${p.wave.hosts.length}` : 'final'));
async function conflict(p: Promise<unknown>, message: string) {
  try {
    await p;
  } catch (err) {
    assert.instance(err, RolloutConflictError);
    assert.is((err as Error).message, message);
    return;
  }
  assert.unreachable('no conflict');
}

test('pause and resume; pause twice is a conflict that names the state', async () => {
  const { id, app } = await waved();
  assert.equal(await findRolloutSubject(db, id), { app, kind: 'app' });
  assert.is(await findRolloutSubject(db, '00000000-0000-0000-0000-000000000000'), null);
  assert.is(await commandRollout(db, '00000000-0000-0000-0000-000000000000', 'pause', opts), null);
  assert.equal(await commandRollout(db, id, 'pause', opts), { id, app, state: 'paused' });
  await conflict(commandRollout(db, id, 'pause', opts), 'rollout is paused: cannot pause');
  assert.equal(await commandRollout(db, id, 'resume', opts), { id, app, state: 'rolling' });
  await conflict(commandRollout(db, id, 'retry', opts), 'rollout is rolling: cannot retry');
});

test('promote starts the next wave now; full: every remaining wave; none in the last wave', async () => {
  const { id, app } = await waved();
  await commandRollout(db, id, 'promote', opts);
  assert.is((await row(id)).wave, 2);
  await commandRollout(db, id, 'promote', { ...opts, full: true });
  assert.is((await row(id)).wave, 3);
  assert.equal(await steps(app, id), ['1:1', '2:3', '3:5']);
  await conflict(commandRollout(db, id, 'promote', opts), 'rollout is in its last wave (3 of 3): nothing to promote');
});

test('a pause for promotion resumes into the next wave', async () => {
  const { id, app } = await waved();
  await db.updateTable('rollouts').set({ state: 'paused', paused_reason: 'promotion' }).where('id', '=', id).execute();
  await commandRollout(db, id, 'resume', opts);
  const r = await row(id);
  assert.is(r.state, 'rolling');
  assert.is(r.wave, 2);
  assert.equal(await steps(app, id), ['1:1', '2:3']);
});

test('abort with on_failure rollback makes the rollback revision; with pause it is aborted; then every command is a conflict', async () => {
  const a = await waved();
  assert.equal(await commandRollout(db, a.id, 'abort', { actor: 'bob' }), { id: a.id, app: a.app, state: 'rolled_back' });
  const r = await row(a.id);
  assert.is(r.abort_reason, 'aborted by bob');
  const rb = await db
    .selectFrom('app_revisions')
    .selectAll()
    .where('rollout_id', '=', r.rollback_rollout_id ?? '')
    .executeTakeFirstOrThrow();
  assert.is(rb.action, 'rollback');
  assert.is(rb.actor, 'bob');
  assert.is((rb.config as { docker_image: string }).docker_image, 'nginx:1');
  await conflict(commandRollout(db, a.id, 'resume', opts), 'rollout is rolled_back: cannot resume');

  const b = await waved({ ...STRATEGY, on_failure: 'pause' });
  assert.equal(await commandRollout(db, b.id, 'abort', { actor: 'bob' }), { id: b.id, app: b.app, state: 'aborted' });
});

test('retry: the failed hosts of a paused rollout get the change again, their failures no longer count', async () => {
  const { id, app } = await waved({ ...STRATEGY, on_failure: 'pause' });
  const [canary] =
    (await db.selectFrom('rollout_waves').select('counted').where('rollout_id', '=', id).where('wave', '=', 1).executeTakeFirstOrThrow()).counted ?? [];
  await db
    .insertInto('rollout_hosts')
    .values({
      rollout_id: id,
      host: canary ?? '',
      status: 'failed',
      error: 'boom',
      image_digest: null,
      containers: '[]',
      pull_ms: 0,
      apply_ms: 0,
      reported_at: sql<Date>`now() - interval '1 second'`,
    })
    .execute();
  await db.updateTable('rollouts').set({ state: 'paused', paused_reason: 'budget' }).where('id', '=', id).execute();
  assert.equal(await commandRollout(db, id, 'retry', opts), { id, app, state: 'rolling' });
  const r = await row(id);
  assert.ok(r.retried[canary ?? '']);
  assert.is(r.wave, 1);
  assert.equal(await steps(app, id), ['1:1', '2:1'], 'the same hosts, a new step');
});

test('all-at-once rollouts take no command', async () => {
  const app = `app${++n}`;
  await hosts(app);
  const r = await createApp(db, app, cfg('nginx:1', null), opts);
  await conflict(commandRollout(db, r.rolloutId, 'pause', opts), 'rollout is not in waves (its app has no rollout_strategy): cannot pause');
});

test('dry run: the plan without applying anything', async () => {
  const app = `app${++n}`;
  await hosts(app, HOSTS, ['h5']);
  await createApp(db, app, cfg('nginx:1', null), opts);
  const before = await db.selectFrom('outbox').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
  const plan = await planRolloutDryRun(db, app, appConfigSchema.parse({ docker_image: 'x', rollout_strategy: STRATEGY }).rollout_strategy, opts);
  assert.is(plan.members, 5, 'offline hosts are members');
  assert.equal(plan.waves, planWaves(app, await rolloutMembers(db, app), [20, 60, 100]));
  const all = await planRolloutDryRun(db, app, null, opts);
  assert.equal(
    all.waves.map((w) => [w.percent, w.hosts.length]),
    [[100, 4]],
  );
  const after = await db.selectFrom('outbox').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
  assert.is(after.n, before.n);
});

test('progress of a rollout in waves: state, wave, waves with their own hosts and results', async () => {
  const { id, app } = await waved(STRATEGY, ['h2']);
  const w1 = await db.selectFrom('rollout_waves').selectAll().where('rollout_id', '=', id).orderBy('wave').execute();
  for (const h of w1[0]?.counted ?? [])
    await db
      .insertInto('rollout_hosts')
      .values({
        rollout_id: id,
        host: h,
        status: 'applied',
        error: null,
        image_digest: null,
        containers: '[]',
        pull_ms: 0,
        apply_ms: 5,
        reported_at: sql<Date>`now()`,
      })
      .execute();
  const p = await getRolloutProgress(db, id, { offlineAfterMissed: 3 });
  assert.ok(p);
  rolloutProgressSchema.parse(p);
  assert.is(p.state, 'rolling');
  assert.is(p.wave, 1);
  assert.equal(
    p.waves.map((w) => [w.percent, w.hosts, w.applied, w.failed, w.started_at !== null, w.finished_at]),
    [
      [20, 1, (w1[0]?.counted ?? []).length, 0, true, null],
      [60, 2, 0, 0, false, null],
      [100, 2, 0, 0, false, null],
    ],
  );
  assert.is(p.complete, false);
  assert.is(p.expected, 4, 'the online members');
  assert.is(p.pending, 4 - (w1[0]?.counted ?? []).length, 'members not reached yet are pending');
  await commandRollout(db, id, 'abort', { actor: 'bob' });
  const done = await listRollouts(db, app, { offlineAfterMissed: 3 });
  const s = done.rollouts.find((r) => r.id === id);
  assert.is(s?.state, 'rolled_back');
  assert.is(s?.complete, true);
  assert.is(s?.abort_reason, 'aborted by bob');
  assert.ok(s?.rollback_rollout_id);
  const rb = done.rollouts.find((r) => r.id === s?.rollback_rollout_id);
  assert.is(rb?.waves.length, 1, 'the rollback goes all at once: one wave of 100%');
  assert.is(rb?.waves[0]?.percent, 100);
});

test.after(async () => {
  await db.destroy();
  await tdb.drop();
});
test.run();
