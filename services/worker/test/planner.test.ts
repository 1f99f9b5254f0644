import { type AppAction, type AppConfigInput, type AppMessage, appConfigSchema } from '@nebula/contracts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ContainerFailedError, PortConflictError } from '../src/errors.ts';
import { applyAppPlan, type ExecutorOptions } from '../src/executor.ts';
import { containerSpec } from '../src/planner/container-spec.ts';
import { desiredFromMessage, type HostContext, isEmptyPlan, planDrift, planHost, TooManyContainersError, unservedApps } from '../src/planner/plan-host.ts';
import type { ContainerRuntime } from '../src/runtime/container-runtime.ts';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';

const HOST: HostContext = { hostId: 'h1', cores: 4, memory_mb: 8192 };
const EXEC: ExecutorOptions = { stopTimeoutSeconds: 1, rollSettleMs: 0, rollTimeoutMs: 1000, pollMs: 1, ownNetwork: 'nebula' };

function message(app: string, revision: number, action: AppAction, config: AppConfigInput, incarnation = 1): AppMessage {
  return { v: 1, app, incarnation, revision, action, config: appConfigSchema.parse(config), rollout_id: `r${revision}`, created_at: new Date().toISOString() };
}

function fakeWithImages(): FakeRuntime {
  const rt = new FakeRuntime();
  for (const [ref, id] of [
    ['img:1', 'sha256:aaa'],
    ['img:2', 'sha256:bbb'],
  ] as const) {
    rt.registry.set(ref, id);
    rt.images.set(ref, id);
  }
  return rt;
}

/** Plans the message against the fake, applies the plan, and returns the plan. */
async function converge(rt: FakeRuntime, m: AppMessage, host = HOST) {
  const imageId = (await rt.imageInfo(m.config.docker_image))?.id ?? null;
  const want = desiredFromMessage(m, { imageId });
  const plan = planHost([want], await rt.listContainers(host.hostId), host);
  for (const app of plan.apps) await applyAppPlan(rt, app, EXEC);
  const again = planHost([want], await rt.listContainers(host.hostId), host);
  assert.ok(isEmptyPlan(again), `nothing left to do after applying: ${JSON.stringify(again.apps.map((a) => a.steps.map((s) => [s.kind, s.reason])))}`);
  return plan;
}

const names = (rt: FakeRuntime, app: string) =>
  rt
    .all()
    .filter((c) => c.labels[LABELS.app] === app)
    .map((c) => c.name)
    .sort();

test('create: <app>-1..N with our labels, env and per-container host ports', async () => {
  const rt = fakeWithImages();
  const plan = await converge(
    rt,
    message('web', 1, 'create', { docker_image: 'img:1', containers_per: { server: 3 }, starting_ports: [8000, { '9000': '80' }], env_vars: { A: 'x' } }),
  );
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['create', 'create', 'create'],
  );
  assert.equal(names(rt, 'web'), ['web-1', 'web-2', 'web-3']);
  const c2 = [...rt.containers.values()].find((c) => c.spec.name === 'web-2');
  assert.equal(c2?.spec.ports, [
    { host: 8001, container: 8000 },
    { host: 9001, container: 80 },
  ]);
  assert.equal(c2?.spec.env, { A: 'x' });
  for (const [k, v] of Object.entries({
    [LABELS.owner]: 'nebula',
    [LABELS.host]: 'h1',
    [LABELS.app]: 'web',
    [LABELS.revision]: '1',
    [LABELS.incarnation]: '1',
    [LABELS.index]: '2',
  })) {
    assert.is(c2?.spec.labels[k], v, k);
  }
  assert.ok(rt.networks.has('nebula'), 'the nebula bridge is created when missing');
});

test('containers_per: cpu times cores, memory divided, at least one', () => {
  const count = (per: AppConfigInput['containers_per']) =>
    planHost([desiredFromMessage(message('a', 1, 'create', { docker_image: 'img:1', containers_per: per }), { imageId: null })], [], HOST).apps[0]?.steps
      .length;
  assert.is(count({ cpu: 2 }), 8);
  assert.is(count({ cpu: 0.1 }), 1);
  assert.is(count({ memory: 1000 }), 8);
  assert.is(count({ server: 0 }), 0);
});

test('update: same config keeps containers; env change replaces all; count changes add or remove only the difference', async () => {
  const rt = fakeWithImages();
  const base = { docker_image: 'img:1', containers_per: { server: 2 }, env_vars: { A: '1' } };
  await converge(rt, message('web', 1, 'create', base));
  const ids = rt
    .all()
    .map((c) => c.id)
    .sort();
  let plan = await converge(rt, message('web', 2, 'update', base));
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['keep', 'keep'],
  );
  plan = await converge(rt, message('web', 3, 'update', { ...base, containers_per: { server: 4 } }));
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['keep', 'keep', 'create', 'create'],
  );
  assert.ok(
    ids.every((id) => rt.containers.has(id)),
    'the first two were not touched',
  );
  plan = await converge(rt, message('web', 4, 'update', { ...base, containers_per: { server: 1 } }));
  assert.equal(plan.apps[0]?.steps.map((s) => s.kind).sort(), ['keep', 'remove', 'remove', 'remove']);
  assert.equal(names(rt, 'web'), ['web-1']);
  plan = await converge(rt, message('web', 5, 'update', { ...base, containers_per: { server: 1 }, env_vars: { A: '2' } }));
  assert.equal(
    plan.apps[0]?.steps.map((s) => [s.kind, s.reason]),
    [['replace', 'config changed']],
  );
});

test('restart and roll replace containers of older revisions even when nothing changed', async () => {
  const rt = fakeWithImages();
  const cfg = { docker_image: 'img:1', containers_per: { server: 2 } };
  await converge(rt, message('web', 1, 'create', cfg));
  let plan = await converge(rt, message('web', 2, 'restart', cfg));
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['replace', 'replace'],
  );
  assert.is(plan.apps[0]?.strategy, 'all-at-once');
  plan = await converge(rt, message('web', 3, 'roll', cfg));
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['replace', 'replace'],
  );
  assert.is(plan.apps[0]?.strategy, 'one-at-a-time');
  // Start-up adoption keeps containers that match whatever revision made them.
  const adopt = planHost([desiredFromMessage(message('web', 4, 'restart', cfg), { imageId: null, adopt: true })], await rt.listContainers('h1'), HOST);
  assert.ok(isEmptyPlan(adopt));
});

test('pull replaces only containers whose image changed', async () => {
  const rt = fakeWithImages();
  const cfg = { docker_image: 'img:1', containers_per: { server: 2 } };
  await converge(rt, message('web', 1, 'create', cfg));
  let plan = await converge(rt, message('web', 2, 'pull', cfg));
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['keep', 'keep'],
  );
  rt.images.set('img:1', 'sha256:new'); // the tag was re-pushed and pulled
  plan = await converge(rt, message('web', 3, 'pull', cfg));
  assert.equal(
    plan.apps[0]?.steps.map((s) => [s.kind, s.reason]),
    [
      ['replace', 'image changed'],
      ['replace', 'image changed'],
    ],
  );
});

test('stop and delete remove the app only; other apps, other hosts and foreign containers stay', async () => {
  const rt = fakeWithImages();
  const cfg = { docker_image: 'img:1', containers_per: { server: 2 } };
  await converge(rt, message('web', 1, 'create', cfg));
  await converge(rt, message('db', 1, 'create', cfg));
  const full = appConfigSchema.parse(cfg);
  const otherHost = rt.seed({ ...containerSpec(full, { hostId: 'h2', app: 'web', incarnation: 1, revision: 1 }, 1), name: 'h2-web-1' });
  const foreign = rt.seed({ ...containerSpec(full, { hostId: 'h1', app: 'web', incarnation: 1, revision: 1 }, 9), labels: { [LABELS.app]: 'web' } });
  const before = rt.all().length;
  let plan = await converge(rt, message('web', 2, 'stop', { ...cfg, running: false }));
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['remove', 'remove'],
  );
  assert.is(rt.all().length, before - 2);
  await converge(rt, message('web', 3, 'start', cfg));
  plan = await converge(rt, message('web', 4, 'delete', cfg));
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['remove', 'remove'],
  );
  assert.equal(names(rt, 'db'), ['db-1', 'db-2']);
  for (const id of [foreign, otherHost]) {
    assert.ok(rt.containers.has(id));
    assert.ok(rt.calls.every((c) => c.id !== id));
  }
  assert.equal(unservedApps(await rt.listContainers('h1'), ['web'], 'h1'), ['db']);
});

test('a new incarnation of an app replaces containers of the old one', async () => {
  const rt = fakeWithImages();
  const cfg = { docker_image: 'img:1' };
  await converge(rt, message('web', 5, 'create', cfg, 1));
  const plan = await converge(rt, message('web', 1, 'create', cfg, 2));
  assert.equal(
    plan.apps[0]?.steps.map((s) => s.kind),
    ['replace'],
  );
});

test('a roll stops at the first container that does not come up, and puts the previous revision back', async () => {
  const rt = fakeWithImages();
  const cfg = { docker_image: 'img:1', containers_per: { server: 3 } };
  await converge(rt, message('web', 1, 'create', cfg));
  const before = new Map(rt.all().map((c) => [c.name, c.id]));
  rt.onStart = (spec) => ({ state: spec.name === 'web-2' && spec.labels[LABELS.revision] === '2' ? 'exited' : 'running' });
  const want = desiredFromMessage(message('web', 2, 'roll', cfg), { imageId: 'sha256:aaa' });
  const plan = planHost([want], await rt.listContainers('h1'), HOST);
  await applyAppPlan(rt, plan.apps[0]!, EXEC).then(
    () => assert.unreachable('should fail'),
    (err: unknown) => {
      assert.instance(err, ContainerFailedError);
      assert.match((err as Error).message, /web-2 did not stay up.*: previous revision 1 put back$/);
    },
  );
  const byName = new Map(rt.all().map((c) => [c.name, c]));
  assert.equal([...byName.keys()].sort(), ['web-1', 'web-2', 'web-3'], 'nothing left set aside');
  for (const name of ['web-1', 'web-2', 'web-3']) {
    assert.is(byName.get(name)?.id, before.get(name), `${name}: the previous container`);
    assert.is(byName.get(name)?.state, 'running');
    assert.is(byName.get(name)?.labels[LABELS.revision], '1');
  }
});

test('a taken port fails the action and leaves no half-made container', async () => {
  const rt = fakeWithImages();
  const cfg = appConfigSchema.parse({ docker_image: 'img:1', starting_ports: [7000] });
  rt.seed({ ...containerSpec(cfg, { hostId: 'x', app: 'other', incarnation: 1, revision: 1 }, 1), labels: {} });
  const plan = planHost([desiredFromMessage(message('web', 1, 'create', cfg), { imageId: null })], [], HOST);
  await applyAppPlan(rt, plan.apps[0]!, EXEC).then(
    () => assert.unreachable('should fail'),
    (err: unknown) => assert.instance(err, PortConflictError),
  );
  assert.equal(names(rt, 'web'), []);
});

test('drift: a container removed by hand and one stopped by hand are repaired; the others are kept', async () => {
  const rt = fakeWithImages();
  const applied = message('web', 2, 'update', { docker_image: 'img:1', containers_per: { server: 3 } });
  await converge(rt, applied);
  assert.equal(planDrift(applied, await rt.listContainers('h1'), HOST).repairs, [], 'nothing drifted yet');
  const byName = new Map(rt.all().map((c) => [c.name, c.id]));
  await rt.remove(byName.get('web-2')!);
  await rt.stop(byName.get('web-3')!);
  const drift = planDrift(applied, await rt.listContainers('h1'), HOST);
  assert.equal(drift.repairs, ['created web-2: missing', 'replaced web-3: not running (exited)']);
  await applyAppPlan(rt, drift.plan, EXEC);
  assert.equal(planDrift(applied, await rt.listContainers('h1'), HOST).repairs, []);
  assert.is(rt.all().find((c) => c.name === 'web-1')?.id, byName.get('web-1'), 'web-1 untouched');
});

test('drift: kept whatever revision made them (no re-pull, no restart); a stopped app loses a container started by hand', async () => {
  const rt = fakeWithImages();
  const cfg = { docker_image: 'img:1', containers_per: { server: 2 } };
  await converge(rt, message('web', 1, 'create', cfg));
  // A restart applied as revision 2 is not re-done by each reconcile.
  assert.equal(planDrift(message('web', 2, 'restart', cfg), await rt.listContainers('h1'), HOST).repairs, []);
  rt.images.set('img:1', 'sha256:new');
  assert.equal(
    planDrift(message('web', 3, 'pull', cfg), await rt.listContainers('h1'), HOST).repairs,
    [],
    'a re-pushed tag is the business of the next pull, not of drift',
  );
  const stopped = message('web', 4, 'stop', { ...cfg, running: false });
  assert.equal(planDrift(stopped, await rt.listContainers('h1'), HOST).repairs, ['removed web-1: app stopped', 'removed web-2: app stopped']);
  const deleted = message('web', 5, 'delete', cfg);
  assert.equal(planDrift(deleted, await rt.listContainers('h1'), HOST).repairs, ['removed web-1: app deleted', 'removed web-2: app deleted']);
});

test('containers_per above MAX_CONTAINERS_PER_APP is refused whole, as a permanent error', () => {
  const host: HostContext = { ...HOST, memory_mb: 1_000_000, maxContainersPerApp: 100 };
  const want = (per: AppConfigInput['containers_per']) =>
    desiredFromMessage(message('a', 1, 'create', { docker_image: 'img:1', containers_per: per }), { imageId: null });
  assert.is(planHost([want({ server: 100 })], [], host).apps[0]?.steps.length, 100);
  for (const per of [{ server: 101 }, { memory: 16 }, { cpu: 64 }]) {
    try {
      planHost([want(per)], [], host);
      assert.unreachable(`should refuse ${JSON.stringify(per)}`);
    } catch (err) {
      assert.instance(err, TooManyContainersError);
      assert.is((err as TooManyContainersError).retryable, false);
      assert.match((err as Error).message, /MAX_CONTAINERS_PER_APP/);
    }
  }
  // A stopped app has no containers whatever its count.
  const stopped = desiredFromMessage(message('a', 2, 'stop', { docker_image: 'img:1', containers_per: { server: 500 }, running: false }), { imageId: null });
  assert.equal(planHost([stopped], [], host).apps[0]?.steps, []);
});

test('an all-at-once apply starts at most maxParallelStarts containers at a time', async () => {
  const rt = fakeWithImages();
  let inFlight = 0;
  let most = 0;
  // The fake answers at once; each start here takes a turn of the event loop, as an engine would.
  const slow: ContainerRuntime = Object.assign(Object.create(rt) as FakeRuntime, {
    async start(id: string) {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setImmediate(r));
      await rt.start(id);
      inFlight -= 1;
    },
  });
  const plan = planHost(
    [desiredFromMessage(message('web', 1, 'create', { docker_image: 'img:1', containers_per: { server: 10 } }), { imageId: null })],
    [],
    HOST,
  );
  await applyAppPlan(slow, plan.apps[0]!, { ...EXEC, maxParallelStarts: 3 });
  assert.is(names(rt, 'web').length, 10);
  assert.is(most, 3);
  assert.ok(rt.all().every((c) => c.state === 'running'));
});

test.run();
