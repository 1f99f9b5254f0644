import { type AppAction, type AppConfigInput, type AppMessage, appConfigSchema } from '@nebula/contracts';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ContainerFailedError, PortConflictError } from '../src/errors.ts';
import { applyAppPlan, type ExecutorOptions } from '../src/executor.ts';
import { desiredFromMessage, type HostContext, planHost } from '../src/planner/plan-host.ts';
import { judgeSettle, type SettleObservation } from '../src/planner/settle.ts';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';

/**
 * The settle watch: a revision whose new containers do not come up puts the previous ones back.
 * The judgement is pure (property-tested); the switch and the put back run on the in-memory runtime.
 */
const HOST: HostContext = { hostId: 'h1', cores: 4, memory_mb: 8192 };
const EXEC: ExecutorOptions = { stopTimeoutSeconds: 1, rollSettleMs: 0, rollTimeoutMs: 1000, pollMs: 1, ownNetwork: 'nebula', settleMs: 20 };

function message(revision: number, action: AppAction, config: AppConfigInput): AppMessage {
  return {
    v: 1,
    app: 'web',
    incarnation: 1,
    revision,
    action,
    config: appConfigSchema.parse(config),
    rollout_id: `r${revision}`,
    created_at: new Date().toISOString(),
  };
}

function fake(): FakeRuntime {
  const rt = new FakeRuntime();
  for (const [ref, id] of [
    ['img:1', 'sha256:aaa'],
    ['img:2', 'sha256:bbb'],
    ['img:exit-1', 'sha256:ccc'],
  ] as const) {
    rt.registry.set(ref, id);
    rt.images.set(ref, id);
  }
  return rt;
}

async function apply(rt: FakeRuntime, m: AppMessage, exec: ExecutorOptions = EXEC) {
  const imageId = (await rt.imageInfo(m.config.docker_image))?.id ?? null;
  const plan = planHost([desiredFromMessage(m, { imageId })], await rt.listContainers('h1'), HOST);
  return applyAppPlan(rt, plan.apps[0]!, exec);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('the apply should fail');
}
const snapshot = (rt: FakeRuntime) =>
  rt
    .all()
    .map((c) => [c.name, c.id, c.state, c.labels[LABELS.revision]])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));

// --- the judgement -------------------------------------------------------------------------------

const running = { state: 'running', health: undefined, restarting: false, restartCount: 0, exitCode: null } as const;

const observation: fc.Arbitrary<SettleObservation> = fc.record({
  name: fc.constantFrom('web-1', 'web-2', 'web-3'),
  details: fc.option(
    fc.record({
      state: fc.constantFrom('running', 'running', 'running', 'exited', 'restarting', 'created', 'dead'),
      health: fc.constantFrom(undefined, 'healthy', 'unhealthy', 'starting'),
      restarting: fc.boolean(),
      restartCount: fc.nat(3),
      exitCode: fc.option(fc.integer({ min: 0, max: 255 })),
    }),
    { freq: 8 },
  ),
  healthBudgetMs: fc.option(fc.nat(20_000)),
});

const broken = (o: SettleObservation) =>
  o.details === null ||
  o.details.state === 'exited' ||
  o.details.state === 'dead' ||
  o.details.restarting ||
  o.details.restartCount > 0 ||
  o.details.health === 'unhealthy';

test('judgeSettle: a container down, restarted, unhealthy or gone fails at once, whatever the time', () => {
  fc.assert(
    fc.property(fc.array(observation, { minLength: 1, maxLength: 4 }), fc.nat(60_000), fc.nat(30_000), (obs, elapsed, settle) => {
      const v = judgeSettle(obs, elapsed, settle);
      if (obs.some(broken)) assert.is(v.kind, 'failed');
    }),
  );
});

test('judgeSettle: settled only after the settle time, with every container running, never restarted, and healthy when checked', () => {
  fc.assert(
    fc.property(fc.array(observation, { minLength: 1, maxLength: 4 }), fc.nat(60_000), fc.nat(30_000), (obs, elapsed, settle) => {
      const v = judgeSettle(obs, elapsed, settle);
      if (v.kind !== 'settled') return;
      assert.ok(elapsed >= settle);
      for (const o of obs) {
        assert.is(o.details?.state, 'running');
        assert.is(o.details?.restartCount, 0);
        if (o.healthBudgetMs !== null) assert.is(o.details?.health, 'healthy');
      }
    }),
  );
});

test('judgeSettle: healthy containers that stay up settle once the time has passed; a health check still starting waits up to its own budget', () => {
  const ok: SettleObservation = { name: 'web-1', details: running, healthBudgetMs: null };
  assert.equal(judgeSettle([ok], 9_999, 10_000), { kind: 'watch' });
  assert.equal(judgeSettle([ok], 10_000, 10_000), { kind: 'settled' });
  const starting: SettleObservation = { name: 'web-1', details: { ...running, health: 'starting' }, healthBudgetMs: 30_000 };
  assert.equal(judgeSettle([starting], 20_000, 10_000), { kind: 'watch' });
  assert.equal(judgeSettle([starting], 30_000, 10_000), { kind: 'failed', reason: 'web-1 was not healthy within 30 s of starting (health starting)' });
  assert.equal(judgeSettle([{ ...starting, details: { ...running, health: 'healthy' } }], 10_000, 10_000), { kind: 'settled' });
  assert.equal(judgeSettle([{ name: 'web-2', details: { ...running, state: 'exited', exitCode: 1 }, healthBudgetMs: null }], 5, 10_000), {
    kind: 'failed',
    reason: 'web-2 exited with code 1 within 10 s of starting',
  });
});

// --- the executor ----------------------------------------------------------------------------------

test('an update whose new containers exit at once puts the previous ones back: same containers, running, nothing set aside left', async () => {
  const rt = fake();
  await apply(rt, message(1, 'create', { docker_image: 'img:1', containers_per: { server: 2 }, starting_ports: [7000] }));
  const before = snapshot(rt);
  const err = await failure(apply(rt, message(2, 'update', { docker_image: 'img:exit-1', containers_per: { server: 2 }, starting_ports: [7000] })));
  assert.instance(err, ContainerFailedError);
  assert.is(err.message, 'web-1 exited with code 1 within 1 s of starting: previous revision 1 put back');
  assert.equal(snapshot(rt), before);
  assert.ok(
    rt.calls.some((c) => c.op === 'rename'),
    'set aside, not removed',
  );
});

test('a container that restarts within the settle time fails the apply too; a roll puts back every container it had rolled', async () => {
  const rt = fake();
  await apply(rt, message(1, 'create', { docker_image: 'img:1', containers_per: { server: 3 } }));
  const before = snapshot(rt);
  rt.onStart = (spec) => ({ state: spec.labels[LABELS.revision] === '2' && spec.name === 'web-3' ? 'restarting' : 'running' });
  const err = await failure(apply(rt, message(2, 'roll', { docker_image: 'img:2', containers_per: { server: 3 } })));
  assert.match(err.message, /web-3 did not stay up .*: previous revision 1 put back$/);
  assert.equal(snapshot(rt), before);
});

test('a new container that turns unhealthy within the settle time: the previous revision is put back', async () => {
  const rt = fake();
  const hc = { test: ['CMD', 'true'] };
  await apply(rt, message(1, 'create', { docker_image: 'img:1', healthcheck: hc }));
  const before = snapshot(rt);
  rt.onStart = (spec) => ({ state: 'running', health: spec.labels[LABELS.revision] === '2' ? 'unhealthy' : 'healthy' });
  const err = await failure(apply(rt, message(2, 'update', { docker_image: 'img:2', healthcheck: hc })));
  assert.match(err.message, /^web-1 turned unhealthy within 1 s of starting: previous revision 1 put back$/);
  assert.equal(snapshot(rt), before);
});

test('a first create that does not come up leaves nothing behind', async () => {
  const rt = fake();
  const err = await failure(apply(rt, message(1, 'create', { docker_image: 'img:exit-1', containers_per: { server: 2 } })));
  assert.is(err.message, 'web-1 exited with code 1 within 1 s of starting: no previous containers: the new ones removed');
  assert.equal(rt.all(), []);
});

test('a start refused (port taken by another) puts the previous containers back as well, keeping the error class', async () => {
  const rt = fake();
  await apply(rt, message(1, 'create', { docker_image: 'img:1', starting_ports: [7000] }));
  const before = snapshot(rt);
  // The engine refuses to start the new container (a port taken, as by a process outside Docker).
  const realStart = rt.start.bind(rt);
  rt.start = async (id, opts) => {
    if (rt.containers.get(id)?.spec.labels[LABELS.revision] === '2') throw new PortConflictError('port 7000 is already allocated');
    return realStart(id, opts);
  };
  const err = await failure(apply(rt, message(2, 'update', { docker_image: 'img:2', starting_ports: [7000] })));
  assert.instance(err, PortConflictError);
  assert.is(err.message, 'port 7000 is already allocated: previous revision 1 put back');
  assert.equal(snapshot(rt), before);
});

test('a good update removes the previous containers once the new ones settled; settle 0 does not watch', async () => {
  const rt = fake();
  await apply(rt, message(1, 'create', { docker_image: 'img:1', containers_per: { server: 2 } }));
  await apply(rt, message(2, 'update', { docker_image: 'img:2', containers_per: { server: 1 } }));
  assert.equal(
    snapshot(rt).map(([name, , state, rev]) => [name, state, rev]),
    [['web-1', 'running', '2']],
  );
  await apply(rt, message(3, 'update', { docker_image: 'img:exit-1' }), { ...EXEC, settleMs: 0 });
  assert.equal(
    snapshot(rt).map(([name, , state, rev]) => [name, state, rev]),
    [['web-1', 'exited', '3']],
    'not watched: applied as it is',
  );
});

test.run();
