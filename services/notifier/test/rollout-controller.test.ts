import type { RolloutStrategyInput } from '@nebula/contracts';
import { waitFor } from '@nebula/test-kit';
import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyDecision, loadSnapshot, rolloutStateCounts } from '../src/db/rollouts.ts';
import { RolloutController } from '../src/rollouts/controller.ts';
import { decide } from '../src/rollouts/decide.ts';
import { createRolloutMetrics } from '../src/rollouts/metrics.ts';
import { log } from './fleet-log.ts';
import { rolloutFixture } from './rollout-fixture.ts';

const f = await rolloutFixture();
const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5'];
await f.hosts(HOSTS);
const WAVES = { waves: [20, 60, 100], bake_seconds: 0, max_failed_hosts: 1, on_failure: 'rollback' as const };
const controller = (o: Partial<ConstructorParameters<typeof RolloutController>[0]> = {}) =>
  new RolloutController({ db: f.db, log, offlineAfterMissedHeartbeats: 3, tickMs: 20, lockPollMs: 20, ...o });

/** Every counted host of the rollout's current wave applies it. */
async function applyWave(id: string) {
  const r = await f.rollout(id);
  const w = (await f.waves(id)).find((x) => x.wave === r.wave);
  for (const h of w?.counted ?? []) await f.result(id, h, 'applied');
}

let app = 0;
/** A fresh app at revision 1 (all at once), then a change in waves (revision 2) on the five hosts. */
async function wavedChange(strategy: RolloutStrategyInput = WAVES) {
  const name = `web${++app}`;
  await f.hosts(HOSTS, name);
  const first = await f.create(name, f.config('nginx:1'));
  const second = await f.update(name, f.config('nginx:2', strategy));
  return { name, first: first.rolloutId, id: second.rolloutId };
}

test('the change path: members, the plan, wave 1 started with its message (v 2, base = last good revision)', async () => {
  const { name, first, id } = await wavedChange();
  const r = await f.rollout(id);
  assert.is(r.state, 'rolling');
  assert.is(r.wave, 1);
  assert.is(r.members?.length, 5);
  const waves = await f.waves(id);
  assert.equal(
    waves.map((w) => [w.wave, w.percent, w.hosts.length, w.started_at !== null]),
    [
      [1, 20, 1, true],
      [2, 60, 2, false],
      [3, 100, 2, false],
    ],
  );
  assert.equal(waves[0]?.counted, waves[0]?.hosts);
  const msgs = await f.messages(name);
  assert.is(msgs.length, 2);
  const m = msgs[1];
  assert.is(m?.v, 2);
  assert.is(m?.msgId, `${id}:wave-1`);
  assert.equal(m?.wave?.hosts, waves[0]?.hosts);
  assert.is(m?.wave?.base?.revision, 1);
  assert.is((m?.wave?.base as { rollout_id?: string } | null)?.rollout_id, first);
  assert.not.ok('rollout_strategy' in ((m as unknown as { config: object }).config ?? {}), 'the wire config has no strategy');
});

test("a good change passes three waves, then the final message without wave makes it everyone's", async () => {
  const { name, id } = await wavedChange();
  const c = controller();
  for (let wave = 1; wave <= 3; wave++) {
    await applyWave(id);
    await c.tick();
  }
  const r = await f.rollout(id);
  assert.is(r.state, 'succeeded');
  const waves = await f.waves(id);
  assert.ok(waves.every((w) => w.started_at !== null && w.finished_at !== null));
  assert.ok((waves[0]?.started_at ?? 0) <= (waves[1]?.started_at ?? 0) && (waves[1]?.started_at ?? 0) <= (waves[2]?.started_at ?? 0));
  const msgs = (await f.messages(name)).filter((m) => m.rollout_id === id);
  assert.equal(
    msgs.map((m) => [m.v, m.wave?.step ?? null, m.wave?.hosts.length ?? null]),
    [
      [2, 1, 1],
      [2, 2, 3],
      [2, 3, 5],
      [1, null, null],
    ],
  );
  await c.tick();
  assert.is((await f.messages(name)).length, 5, 'nothing more once it succeeded');
});

test('a failed canary stops the rollout and rolls back: a rollback revision whose history says why', async () => {
  const { name, id } = await wavedChange();
  const [canary] = (await f.waves(id))[0]?.counted ?? [];
  await f.result(id, canary ?? '', 'failed', 'container web-0 exited (code 1)');
  const registry = new Registry();
  const metrics = createRolloutMetrics(registry, () => rolloutStateCounts(f.db));
  await controller({ metrics }).tick();
  const r = await f.rollout(id);
  assert.is(r.state, 'rolled_back');
  assert.is(r.abort_reason, `1 of 1 hosts failed (budget: max_failed_hosts 1): first errors: ${canary}: container web-0 exited (code 1)`);
  assert.ok(r.rollback_rollout_id);
  const rev = await f.db
    .selectFrom('app_revisions')
    .selectAll()
    .where('rollout_id', '=', r.rollback_rollout_id ?? '')
    .executeTakeFirstOrThrow();
  assert.is(rev.action, 'rollback');
  assert.is(rev.revision, 3);
  assert.is(rev.actor, 'rollout-controller');
  assert.is((rev.config as { docker_image: string }).docker_image, 'nginx:1');
  assert.match(rev.reason ?? '', `rollback of rollout ${id}`);
  assert.match(rev.reason ?? '', '1 of 1 hosts failed');
  assert.match(rev.reason ?? '', 'container web-0 exited');
  const last = (await f.messages(name)).at(-1);
  assert.is(last?.action, 'rollback');
  assert.is(last?.v, 1);
  assert.is(last?.wave, undefined, 'a rollback goes to every host at once');
  const rb = await f.rollout(r.rollback_rollout_id ?? '');
  assert.is(rb.state, null);
  assert.is(metrics.rollbacks, 1);
  assert.match(await registry.metrics(), 'nebula_rollout_automatic_rollbacks_total 1');
  assert.match(await registry.metrics(), 'nebula_rollouts{state="rolled_back"} 1');
  assert.match(await registry.metrics(), 'nebula_rollout_wave_seconds_count 1');
});

test('a stale decision changes nothing: the same step applied twice starts its wave once', async () => {
  const { name, id } = await wavedChange();
  await applyWave(id);
  const snap = await loadSnapshot(f.db, id);
  assert.ok(snap);
  const j = decide(snap);
  assert.equal(j.decision, { kind: 'advance', to: 2 });
  const [a, b] = await Promise.all([
    applyDecision(f.db, snap, j.decision, j.found, { offlineAfterMissedHeartbeats: 3 }),
    applyDecision(f.db, snap, j.decision, j.found, { offlineAfterMissedHeartbeats: 3 }),
  ]);
  assert.equal([a.applied, b.applied].sort(), [false, true]);
  const steps = (await f.messages(name)).filter((m) => m.rollout_id === id).map((m) => m.wave?.step);
  assert.equal(steps, [1, 2]);
});

test('a controller killed mid-rollout (its lock session terminated) is replaced with no wave lost, repeated or skipped', async () => {
  const { name, id } = await wavedChange();
  const a = controller();
  const b = controller();
  try {
    a.start();
    await waitFor('A active', () => a.state === 'active');
    b.start();
    await waitFor('B waiting', () => b.state === 'waiting');
    await applyWave(id);
    await waitFor('wave 2 by A', async () => (await f.rollout(id)).wave === 2);
    // A's session dies: PostgreSQL drops its lock, B takes it.
    const pid = a.sessionPid;
    await f.db.executeQuery({ sql: 'select pg_terminate_backend($1)', parameters: [pid], query: { kind: 'SelectQueryNode' } } as never);
    await waitFor('B active', () => b.state === 'active');
    await applyWave(id);
    await waitFor('wave 3', async () => (await f.rollout(id)).wave === 3);
    await applyWave(id);
    await waitFor('succeeded', async () => (await f.rollout(id)).state === 'succeeded');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  const steps = (await f.messages(name)).filter((m) => m.rollout_id === id).map((m) => m.wave?.step ?? 'final');
  assert.equal(steps, [1, 2, 3, 'final']);
  assert.ok((await f.waves(id)).every((w) => w.started_at !== null));
});

test('hosts offline at their wave start are not counted and do not block it', async () => {
  const name = `web${++app}`;
  await f.hosts(['o1', 'o2', 'o3'], name);
  await f.create(name, f.config('nginx:1'));
  await f.hosts(['o1', 'o2', 'o3'], name, true);
  const { rolloutId: id } = await f.update(name, f.config('nginx:2', { waves: [100], bake_seconds: 0 }));
  const w = (await f.waves(id))[0];
  assert.equal(w?.counted, []);
  assert.is(w?.hosts.length, 3);
  await controller().tick();
  assert.is((await f.rollout(id)).state, 'succeeded');
});

test("timeouts and bake are judged by the controller's clock", async () => {
  const { id } = await wavedChange({ waves: [20, 100], bake_seconds: 30, host_timeout_seconds: 60, max_failed_hosts: 1, on_failure: 'pause' });
  const started = (await f.waves(id))[0]?.started_at ?? new Date();
  let now = new Date(started.getTime() + 59_000);
  const c = controller({ clock: () => now });
  await c.tick();
  assert.is((await f.rollout(id)).state, 'rolling', 'within host_timeout_seconds');
  now = new Date(started.getTime() + 60_000);
  await c.tick();
  const r = await f.rollout(id);
  assert.is(r.state, 'paused', 'a host silent past its timeout counts as failed: the budget (on_failure pause)');
  assert.is(r.paused_reason, 'budget');
  assert.match(r.abort_reason ?? '', 'no result within host_timeout_seconds');
});

test('a newer change supersedes the active rollout', async () => {
  const { name, id } = await wavedChange();
  const third = await f.update(name, f.config('nginx:3', WAVES));
  const r = await f.rollout(id);
  assert.is(r.state, 'aborted');
  assert.is(r.abort_reason, `superseded by rollout ${third.rolloutId}`);
  const n = await f.rollout(third.rolloutId);
  assert.is(n.wave, 1);
  // Its base is the last good revision: revision 2 never succeeded, so revision 1.
  const m = (await f.messages(name)).at(-1);
  assert.is(m?.wave?.base?.revision, 1);
});

test('a poke (results written on this replica) judges the rollouts before the next tick', async () => {
  const { id } = await wavedChange();
  // A tick an hour away: only a poke can start the next wave.
  const c = controller({ tickMs: 3_600_000 });
  c.start();
  try {
    await waitFor('active', () => c.state === 'active');
    await waitFor('first tick', () => c.ticks >= 1);
    await applyWave(id);
    const before = c.ticks;
    c.poke();
    await waitFor('wave 2 started by the poke', async () => (await f.rollout(id)).wave === 2);
    assert.ok(c.ticks > before);
  } finally {
    await c.stop();
  }
});

test.after(() => f.close());
test.run();
