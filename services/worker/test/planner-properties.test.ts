import { APP_ACTIONS, type AppMessage, appConfigSchema } from '@nebula/contracts';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyAppPlan, type ExecutorOptions } from '../src/executor.ts';
import { desiredCount } from '../src/planner/container-spec.ts';
import { type DesiredApp, desiredFromMessage, type HostContext, isEmptyPlan, planDrift, planHost } from '../src/planner/plan-host.ts';
import { type ContainerSpec, LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';

/**
 * The planner's safety rules, over random hosts: random containers (ours, other hosts', not
 * Nebula's, with random labels and states) and random desired revisions of random apps.
 */
const HOST: HostContext = { hostId: 'h1', cores: 2, memory_mb: 4096 };
const APPS = ['a', 'b', 'c'];
const IMAGES: Record<string, string> = { 'img:1': 'sha256:111', 'img:2': 'sha256:222' };
const EXEC: ExecutorOptions = { stopTimeoutSeconds: 0, rollSettleMs: 0, rollTimeoutMs: 100, pollMs: 0, ownNetwork: 'nebula' };

const containerArb = fc.record({
  host: fc.constantFrom('h1', 'h1', 'h2'),
  owner: fc.constantFrom('nebula', 'nebula', 'nebula', 'someone', undefined),
  app: fc.constantFrom(...APPS, undefined),
  index: fc.oneof(fc.integer({ min: 0, max: 6 }).map(String), fc.constantFrom('x', undefined)),
  nameMatches: fc.boolean(),
  /** A name of the app whose index differs from the label's (a name the planner will reuse). */
  nameIndex: fc.option(fc.integer({ min: 1, max: 4 }).map(String), { nil: undefined }),
  hash: fc.constantFrom('stale', undefined),
  incarnation: fc.constantFrom('1', '2', undefined),
  revision: fc.constantFrom('1', '3', '9'),
  state: fc.constantFrom('running', 'running', 'exited', 'created', 'restarting', 'paused', 'dead'),
  image: fc.constantFrom('img:1', 'img:2'),
});

const configArb = fc.record({
  docker_image: fc.constantFrom('img:1', 'img:2'),
  containers_per: fc.oneof(fc.record({ server: fc.integer({ min: 0, max: 5 }) }), fc.record({ cpu: fc.constantFrom(0.5, 1, 2) })),
  env_vars: fc.dictionary(fc.constantFrom('A', 'B'), fc.constantFrom('1', '2')),
  running: fc.boolean(),
  rolling_restart: fc.boolean(),
});

const desiredArb = fc
  .uniqueArray(
    fc.record({
      app: fc.constantFrom(...APPS),
      incarnation: fc.integer({ min: 1, max: 2 }),
      revision: fc.integer({ min: 1, max: 10 }),
      action: fc.constantFrom(...APP_ACTIONS),
      config: configArb,
      absent: fc.boolean(),
      adopt: fc.boolean(),
      pinImage: fc.boolean(),
    }),
    { selector: (d) => d.app, maxLength: 3 },
  )
  .map((list) =>
    list.map((d): DesiredApp => {
      if (d.absent) return { app: d.app, present: false, reason: 'not served' };
      const m: AppMessage = {
        v: 1,
        app: d.app,
        incarnation: d.incarnation,
        revision: d.revision,
        action: d.action,
        config: appConfigSchema.parse(d.config),
        rollout_id: 'r',
        created_at: new Date(0).toISOString(),
      };
      return desiredFromMessage(m, { imageId: d.pinImage ? (IMAGES[d.config.docker_image] ?? null) : null, adopt: d.adopt });
    }),
  );

const seedsArb: fc.Arbitrary<Array<ContainerSpec & { state: string }>> = fc
  .array(containerArb, { maxLength: 12 })
  .map((list) =>
    list.map((c, i) => {
      const labels: Record<string, string> = {};
      const set = (k: string, v: string | undefined) => {
        if (v !== undefined) labels[k] = v;
      };
      set(LABELS.owner, c.owner);
      set(LABELS.host, c.host);
      set(LABELS.app, c.app);
      set(LABELS.index, c.index);
      set(LABELS.configHash, c.hash);
      set(LABELS.incarnation, c.incarnation);
      set(LABELS.revision, c.revision);
      // Names are unique per engine: a name taken by a container that is not ours is a (permanent)
      // conflict the planner cannot solve, so only our own containers may hold the app's names.
      const ours = c.owner === 'nebula' && c.host === HOST.hostId;
      const nameIndex = c.nameIndex ?? c.index;
      const name = ours && c.nameMatches && c.app !== undefined && nameIndex !== undefined ? `${c.app}-${nameIndex}` : `other-${i}`;
      return {
        name,
        image: c.image,
        env: {},
        ports: [],
        volumes: [],
        devices: [],
        privileged: false,
        networks: ['bridge'],
        command: null,
        entrypoint: null,
        labels,
        memoryLimitMb: null,
        cpuLimit: null,
        healthcheck: null,
        state: c.state,
      };
    }),
  )
  // Docker names are unique per engine; keep the first of each name.
  .map((list) => list.filter((c, i) => list.findIndex((d) => d.name === c.name) === i));

function seeded(seeds: Array<ContainerSpec & { state: string }>): FakeRuntime {
  const rt = new FakeRuntime();
  for (const [ref, id] of Object.entries(IMAGES)) {
    rt.images.set(ref, id);
    rt.registry.set(ref, id);
  }
  for (const s of seeds) rt.seed(s, s.state, IMAGES[s.image]);
  return rt;
}

test('it never plans on a container that is not ours, or not of the app it plans', () => {
  fc.assert(
    fc.property(seedsArb, desiredArb, (seeds, desired) => {
      const rt = seeded(seeds);
      const plan = planHost(desired, rt.all(), HOST);
      for (const app of plan.apps) {
        for (const step of app.steps) {
          if (step.kind === 'create') continue;
          // Checked from the labels here, not with the planner's own isOwned.
          assert.is(step.current.labels[LABELS.owner], 'nebula', `${step.current.name} is not Nebula's`);
          assert.is(step.current.labels[LABELS.host], HOST.hostId, `${step.current.name} is another host's`);
          assert.is(step.current.labels[LABELS.app], app.app);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('it never wants more containers than desired, and applying leaves exactly the desired number', async () => {
  await fc.assert(
    fc.asyncProperty(seedsArb, desiredArb, async (seeds, desired) => {
      const rt = seeded(seeds);
      const foreign = rt.all().filter((c) => c.labels[LABELS.owner] !== 'nebula' || c.labels[LABELS.host] !== HOST.hostId);
      const plan = planHost(desired, rt.all(), HOST);
      for (const app of plan.apps) await applyAppPlan(rt, app, EXEC);
      for (const want of desired) {
        const n = want.present ? (want.run ? desiredCount(want.config, HOST) : 0) : 0;
        const planned = plan.apps.find((a) => a.app === want.app)?.steps.filter((s) => s.kind !== 'remove').length;
        assert.is(planned, n);
        const left = (await rt.listContainers(HOST.hostId)).filter((c) => c.labels[LABELS.app] === want.app);
        assert.is(left.length, n, `${want.app}: ${left.length} containers, ${n} desired`);
      }
      // Containers that are not ours are exactly as they were.
      for (const f of foreign)
        assert.equal(
          rt.all().find((c) => c.id === f.id),
          f,
        );
    }),
    { numRuns: 300 },
  );
});

const messageArb = fc
  .record({ app: fc.constantFrom(...APPS), revision: fc.integer({ min: 1, max: 10 }), action: fc.constantFrom(...APP_ACTIONS), config: configArb })
  .map(
    (d): AppMessage => ({
      v: 1,
      app: d.app,
      incarnation: 1,
      revision: d.revision,
      action: d.action,
      config: appConfigSchema.parse(d.config),
      rollout_id: 'r',
      created_at: new Date(0).toISOString(),
    }),
  );

test('drift: none right after a revision is applied; after random damage, repairing leaves none, and never touches what is not ours', async () => {
  await fc.assert(
    fc.asyncProperty(
      seedsArb,
      messageArb,
      fc.array(fc.record({ pick: fc.nat(), how: fc.constantFrom('remove', 'stop') }), { maxLength: 4 }),
      async (seeds, applied, damage) => {
        const rt = seeded(seeds);
        const foreign = rt.all().filter((c) => c.labels[LABELS.owner] !== 'nebula' || c.labels[LABELS.host] !== HOST.hostId);
        const imageId = IMAGES[applied.config.docker_image] ?? null;
        for (const app of planHost([desiredFromMessage(applied, { imageId })], rt.all(), HOST).apps) await applyAppPlan(rt, app, EXEC);
        assert.equal(planDrift(applied, rt.all(), HOST).repairs, [], 'nothing drifted right after applying');
        const mine = () =>
          rt.all().filter((c) => c.labels[LABELS.app] === applied.app && c.labels[LABELS.host] === HOST.hostId && c.labels[LABELS.owner] === 'nebula');
        for (const d of damage) {
          const list = mine();
          const victim = list[d.pick % Math.max(1, list.length)];
          if (victim === undefined) break;
          await (d.how === 'remove' ? rt.remove(victim.id) : rt.stop(victim.id));
        }
        const drift = planDrift(applied, rt.all(), HOST);
        assert.is(drift.repairs.length, drift.plan.steps.filter((s) => s.kind !== 'keep').length);
        await applyAppPlan(rt, drift.plan, EXEC);
        assert.equal(planDrift(applied, rt.all(), HOST).repairs, [], 'nothing left after repairing');
        for (const f of foreign)
          assert.equal(
            rt.all().find((c) => c.id === f.id),
            f,
          );
      },
    ),
    { numRuns: 300 },
  );
});

test('planning again after applying yields an empty plan', async () => {
  await fc.assert(
    fc.asyncProperty(seedsArb, desiredArb, async (seeds, desired) => {
      const rt = seeded(seeds);
      const plan = planHost(desired, rt.all(), HOST);
      for (const app of plan.apps) await applyAppPlan(rt, app, EXEC);
      const again = planHost(desired, rt.all(), HOST);
      assert.ok(isEmptyPlan(again), JSON.stringify(again.apps.map((a) => a.steps.filter((s) => s.kind !== 'keep').map((s) => [s.kind, s.reason]))));
    }),
    { numRuns: 300 },
  );
});

test.run();
