import type { NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, type Worker, type WorkerOptions } from '../src/worker.ts';
import { collectResults, createStreams, envelope, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * A convergence that hangs (an engine call that never answers) with a real nats-server and the
 * in-memory runtime: it ends at its deadline as a failed result naming the call, and it gives way
 * to a newer revision. The real engine (frozen with SIGSTOP) is in worker-engine-freeze.test.ts.
 */
let nats: TestNatsServer;
let nc: NatsConnection;
let bus: TestBus;
const workers: Worker[] = [];
const FAST: Partial<WorkerOptions> = {
  heartbeatIntervalMs: 200,
  ackWaitMs: 2_000,
  fetchExpiresMs: 1_000,
  retryBaseMs: 100,
  retryMaxMs: 400,
  rollSettleMs: 0,
  settleMs: 300,
  pollMs: 5,
  healthCheckIntervalMs: 100,
};

function runtime(): FakeRuntime {
  const rt = new FakeRuntime();
  for (const ref of ['img:1', 'img:2']) rt.registry.set(ref, `sha256:${ref.replace(':', '')}`);
  return rt;
}

async function startWorker(hostId: string, apps: string[], rt: FakeRuntime, options: Partial<WorkerOptions>): Promise<Worker> {
  const w = createWorker({
    hostId,
    apps,
    ...(await bus.host(hostId, apps, { ...FAST, ...options })),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log,
    options: { ...FAST, ...options },
  });
  workers.push(w);
  await w.start();
  return w;
}

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  nc = bus.admin;
  await createStreams(nc);
});

test.after(async () => {
  for (const w of workers) await w.stop();
  await bus.close();
  await nats.cleanup();
});

test('a start that never answers ends at the convergence deadline as a failed result naming it; once the engine answers, the revision is applied', async () => {
  const app = `hang-${suffix()}`;
  const rt = runtime();
  rt.hang.add('start');
  const results = collectResults(nc, app);
  // A deadline shorter than the ack wait: the message is kept by working() until then, not after.
  const w = await startWorker('h1', [app], rt, { convergeTimeoutMs: 1_000, stuckAfterMs: 60_000 });
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  const failed = await results.waitFor(1, 'failed', 20_000);
  assert.match(
    failed.error ?? '',
    /ConvergeTimeoutError: revision 1\/1 \(create\) did not converge within 1 s: stuck in fake engine call `start hang-\w+-1`/,
    failed.error ?? '',
  );
  assert.match(failed.error ?? '', /\(retrying\)$/, 'retryable');
  assert.ok(rt.aborted.includes(`start ${app}-1`), 'the hung call was aborted, not left waiting');
  // The created container whose start hung was removed again: nothing half-made.
  assert.equal(
    rt.all().filter((c) => c.labels[LABELS.app] === app && c.state !== 'running'),
    [],
  );

  rt.thaw();
  const applied = await results.waitFor(1, 'applied', 20_000);
  assert.equal(
    applied.containers.map((c) => c.state),
    ['running'],
  );
  assert.equal(w.applied()[app], { incarnation: 1, revision: 1 });
  results.stop();
});

test('a convergence stuck in a pull gives way to a newer revision: superseded, and the newer one is applied', async () => {
  const app = `stuck-${suffix()}`;
  const rt = runtime();
  rt.hang.add('pull');
  const results = collectResults(nc, app);
  await startWorker('h2', [app], rt, { convergeTimeoutMs: 120_000, stuckAfterMs: 300 });
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  await waitFor('the pull of revision 1 to hang', () => rt.hanging.includes('pull img:1'));
  rt.hang.delete('pull'); // later pulls answer; the one in flight stays stuck
  await publishApp(bus, envelope(app, 2, 'update', { docker_image: 'img:2' }));
  const r1 = await results.waitFor(1, undefined, 20_000);
  assert.is(r1.status, 'superseded');
  const r2 = await results.waitFor(2, undefined, 20_000);
  assert.is(r2.status, 'applied', r2.error ?? '');
  assert.equal(rt.hanging, []);
  assert.equal(rt.aborted, ['pull img:1']);
  assert.equal(
    rt
      .all()
      .filter((c) => c.labels[LABELS.app] === app)
      .map((c) => c.imageId),
    ['sha256:img2'],
  );
  results.stop();
});

test('a convergence that makes progress is not given up for a newer revision', async () => {
  const app = `busy-${suffix()}`;
  const rt = runtime();
  const results = collectResults(nc, app);
  // Containers come up "starting" and turn healthy later: the roll polls (progress) meanwhile.
  let healthyAfter = Date.now() + 60_000;
  rt.onStart = (spec) => ({ state: 'running', health: spec.healthcheck ? (Date.now() > healthyAfter ? 'healthy' : 'starting') : undefined });
  const w = await startWorker('h3', [app], rt, { convergeTimeoutMs: 120_000, stuckAfterMs: 300, rollTimeoutMs: 30_000 });
  const hc = { test: ['CMD', 'true'], interval_seconds: 1, timeout_seconds: 1, retries: 1 };
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1' }));
  assert.is((await results.waitFor(1)).status, 'applied');
  await publishApp(bus, envelope(app, 2, 'roll', { docker_image: 'img:1', healthcheck: hc }));
  await waitFor('the roll to start', () => rt.calls.some((c) => c.op === 'create' && rt.containers.get(c.id ?? '')?.spec.healthcheck !== null));
  await publishApp(bus, envelope(app, 3, 'update', { docker_image: 'img:2', healthcheck: hc }));
  await new Promise((r) => setTimeout(r, 1_000)); // several stuck checks pass while the roll polls
  // The FakeRuntime computes health at start only: make the next container healthy, then finish.
  healthyAfter = 0;
  for (const c of rt.containers.values()) if (c.health === 'starting') c.health = 'healthy';
  const r2 = await results.waitFor(2, undefined, 20_000);
  assert.is(r2.status, 'applied', r2.error ?? '');
  assert.is((await results.waitFor(3, undefined, 20_000)).status, 'applied');
  assert.equal(w.applied()[app], { incarnation: 1, revision: 3 });
  results.stop();
});

test.run();
