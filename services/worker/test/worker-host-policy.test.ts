import { jetstreamManager } from '@nats-io/jetstream';
import { consumerName } from '@nebula/bus-auth';
import { type AppConfigInput, streams } from '@nebula/contracts';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_HOST_POLICY, type HostPolicy } from '../src/planner/host-policy.ts';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, type Worker, type WorkerOptions } from '../src/worker.ts';
import { collectResults, createStreams, envelope, FAST_WORKER, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * The host's policy, enforced by the worker (real nats-server, in-memory engine): a revision it
 * refuses is a failed result naming each rule and the setting that allows it, checked before any
 * pull or container change, terminated (the same config would be refused again), and the app's
 * containers are left as they are.
 */
let nats: TestNatsServer;
let bus: TestBus;
const workers: Worker[] = [];
const FAST: Partial<WorkerOptions> = { ...FAST_WORKER, ackWaitMs: 1_000 };

function runtime(): FakeRuntime {
  const rt = new FakeRuntime();
  rt.registry.set('img:1', 'sha256:img1');
  return rt;
}

async function startWorker(hostId: string, apps: string[], rt: FakeRuntime, policy: Partial<HostPolicy> = {}, registry = new Registry()): Promise<Worker> {
  const w = createWorker({
    hostId,
    apps,
    ...(await bus.host(hostId, apps, FAST)),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log,
    registry,
    options: { ...FAST, hostPolicy: { ...DEFAULT_HOST_POLICY, ...policy } },
  });
  workers.push(w);
  await w.start();
  return w;
}

const appContainers = (rt: FakeRuntime, app: string) => [...rt.containers.values()].filter((c) => c.spec.labels[LABELS.app] === app);
const create = (app: string, revision: number, config: Omit<AppConfigInput, 'docker_image'>, action: 'create' | 'update' | 'stop' = 'create') =>
  envelope(app, revision, action, { docker_image: 'img:1', ...config });

/** nebula_worker_policy_refusals_total, as [rule, count]. */
async function refusals(registry: Registry): Promise<Array<[unknown, number]>> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'nebula_worker_policy_refusals_total');
  return (metric?.values ?? []).map((v) => [v.labels.rule, v.value]);
}

/** Waits until the host holds no message of the app unacknowledged (a terminated one is never delivered again). */
async function settled(hostId: string, app: string): Promise<{ num_redelivered: number }> {
  const jsm = await jetstreamManager(bus.admin);
  return waitFor('the message to be finished', async () => {
    const info = await jsm.consumers.info(streams.apps.name, consumerName(hostId, app));
    return info.num_ack_pending === 0 && info.num_pending === 0 ? info : undefined;
  });
}

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  await createStreams(bus.admin);
});

test.after(async () => {
  for (const w of workers) await w.stop();
  await bus.close();
  await nats.cleanup();
});

test('by default a privileged revision is refused: a failed result naming the rule and its setting, nothing pulled or created, not retried', async () => {
  const app = `priv-${suffix()}`;
  const rt = runtime();
  const registry = new Registry();
  const results = collectResults(bus.admin, app);
  const w = await startWorker('hp1', [app], rt, {}, registry);
  await publishApp(bus, create(app, 1, { privileged: true }));
  const r = await results.waitFor(1);
  assert.is(r.status, 'failed');
  assert.is(r.error, "HostPolicyError: refused by this host's policy: privileged (privileged: true; allow with WORKER_ALLOW_PRIVILEGED=true)");
  assert.equal(r.containers, []);
  assert.is((await settled('hp1', app)).num_redelivered, 0, 'delivered again');
  assert.is(rt.pullAttempts, 0, 'image pulled');
  assert.equal(rt.calls, [], 'the engine was changed');
  assert.equal(w.applied()[app], null);
  assert.equal(await refusals(registry), [['privileged', 1]]);
  assert.is(results.all.length, 1);
  results.stop();
});

test('a running app keeps its containers when a refused revision comes; a later one that passes is applied', async () => {
  const app = `keep-${suffix()}`;
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  const w = await startWorker('hp2', [app], rt, { allowedBindRoots: ['/srv/data'] });
  await publishApp(bus, create(app, 1, { volumes: ['/srv/data/app:/data'] }));
  await results.waitFor(1, 'applied');
  const before = rt.calls.length;
  const [running] = appContainers(rt, app);
  await publishApp(bus, create(app, 2, { volumes: ['/srv/data/../../etc:/host-etc', 'cache:/cache'], devices: ['/dev/sda'], networks: ['host'] }, 'update'));
  const r = await results.waitFor(2);
  assert.is(r.status, 'failed');
  assert.is(
    r.error,
    "HostPolicyError: refused by this host's policy: devices (devices: /dev/sda; allow with WORKER_ALLOW_DEVICES=/dev/sda), " +
      'host_network (networks: host; allow with WORKER_ALLOW_HOST_NETWORK=true), ' +
      'bind_mount (volumes: /srv/data/../../etc:/host-etc; allow with WORKER_ALLOWED_BIND_ROOTS=/srv/data,/etc)',
  );
  assert.equal(
    r.containers.map((c) => [c.name, c.state, c.id]),
    [[`${app}-1`, 'running', running?.id]],
    'the previous revision keeps serving',
  );
  await settled('hp2', app);
  assert.is(rt.calls.length, before, 'the engine was changed');
  assert.equal(w.applied()[app], { incarnation: 1, revision: 1 });
  // The reconcile keeps the last applied revision, not the refused one.
  await w.reconcile(Date.now() + 3_600_000);
  assert.is(rt.calls.length, before);
  await publishApp(bus, create(app, 3, { volumes: ['/srv/data/app:/data'], env_vars: { V: '3' } }, 'update'));
  await results.waitFor(3, 'applied');
  assert.equal(appContainers(rt, app)[0]?.spec.env, { V: '3' });
  results.stop();
});

test('with the policy allowing it, the privileged revision is applied', async () => {
  const app = `privok-${suffix()}`;
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await startWorker('hp3', [app], rt, { allowPrivileged: true, allowDevices: ['/dev/ttyUSB0'], allowHostNetwork: true });
  await publishApp(bus, create(app, 1, { privileged: true, devices: ['/dev/ttyUSB0:/dev/ttyS0'], networks: ['host'] }));
  assert.is((await results.waitFor(1)).status, 'applied');
  const [c] = appContainers(rt, app);
  assert.is(c?.spec.privileged, true);
  assert.equal(c?.spec.devices, ['/dev/ttyUSB0:/dev/ttyS0']);
  assert.equal(c?.spec.networks, ['host']);
  results.stop();
});

test('the Docker socket is refused even with its directory allowed as a bind root, through `..` too; WORKER_ALLOW_DOCKER_SOCKET allows it', async () => {
  const app = `sock-${suffix()}`;
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await startWorker('hp4', [app], rt, { allowedBindRoots: ['/var/run', '/srv/data'] });
  await publishApp(bus, create(app, 1, { volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }));
  const r1 = await results.waitFor(1);
  assert.is(r1.status, 'failed');
  assert.is(
    r1.error,
    "HostPolicyError: refused by this host's policy: docker_socket (volumes: /var/run/docker.sock:/var/run/docker.sock; allow with WORKER_ALLOW_DOCKER_SOCKET=true)",
  );
  await publishApp(bus, create(app, 2, { volumes: ['/srv/data/../../var/run:/host-run'] }));
  const r2 = await results.waitFor(2);
  assert.is(r2.status, 'failed');
  assert.match(r2.error ?? '', /docker_socket \(volumes: \/srv\/data\/\.\.\/\.\.\/var\/run:\/host-run; allow with WORKER_ALLOW_DOCKER_SOCKET=true\)/);
  await settled('hp4', app);
  assert.equal(rt.calls, [], 'the engine was changed');

  const app2 = `sockok-${suffix()}`;
  const rt2 = runtime();
  const ok = collectResults(bus.admin, app2);
  await startWorker('hp5', [app2], rt2, { allowDockerSocket: true });
  await publishApp(bus, create(app2, 1, { volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }));
  assert.is((await ok.waitFor(1)).status, 'applied');
  assert.equal(appContainers(rt2, app2)[0]?.spec.volumes, ['/var/run/docker.sock:/var/run/docker.sock']);
  results.stop();
  ok.stop();
});

test('at start, a refused latest revision leaves the containers as they are and is not tried again; stopping the app is never refused', async () => {
  const app = `adopt-${suffix()}`;
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  const before = await startWorker('hp6', [app], rt, { allowPrivileged: true });
  await publishApp(bus, create(app, 1, { privileged: true }));
  await results.waitFor(1, 'applied');
  await before.stop();
  // The same host restarted with the default policy.
  const calls = rt.calls.length;
  const registry = new Registry();
  const w = await startWorker('hp6', [app], rt, {}, registry);
  assert.equal(w.applied()[app], null);
  assert.equal(
    appContainers(rt, app).map((c) => [c.spec.name, c.state]),
    [[`${app}-1`, 'running']],
  );
  await w.reconcile(Date.now() + 3_600_000);
  await w.reconcile(Date.now() + 7_200_000);
  assert.is(rt.calls.length, calls, 'the engine was changed');
  assert.is(rt.pullAttempts, 1, 'pulled again');
  assert.equal(await refusals(registry), [['privileged', 1]], 'refused once, at start');
  await publishApp(bus, create(app, 2, { privileged: true }, 'stop'));
  assert.is((await results.waitFor(2)).status, 'applied');
  assert.equal(appContainers(rt, app), []);
  results.stop();
});

test.run();
