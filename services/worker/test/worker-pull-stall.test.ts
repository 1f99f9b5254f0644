import { spawnSync } from 'node:child_process';
import type { NatsConnection } from '@nats-io/transport-node';
import { type StallingRegistry, startNatsServer, startStallingRegistry, type TestNatsServer } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isRetryable, PullStalledError } from '../src/errors.ts';
import { DockerRuntime } from '../src/runtime/docker-runtime.ts';
import { createWorker, type Worker } from '../src/worker.ts';
import { containersOf, docker, dockerCli, ECHO, REGISTRY, removeHostContainers } from './docker-helpers.ts';
import { collectResults, createStreams, envelope, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * A registry that serves the manifest and then stalls the layer download, in front of the local
 * registry: a pull through it ends as a retryable PullStalledError within the stall timeout (the
 * engine alone would wait for ever), and the worker applies the revision once the registry sends.
 */
const STALL_MS = 2_000;
let nats: TestNatsServer;
let nc: NatsConnection;
let bus: TestBus;
let proxy: StallingRegistry;
const repo = `nebula-test-${suffix()}/stall`;
const workers: Worker[] = [];
const host = `stall-${suffix()}`;
/** Content no engine has yet, so that the pull must download a layer. */
const refThroughProxy = () => `${proxy.host}/${repo}:1`;

async function present(ref: string): Promise<boolean> {
  return dockerCli('image', 'inspect', ref).then(
    () => true,
    () => false,
  );
}

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  nc = bus.admin;
  await createStreams(nc);
  const pushed = `${REGISTRY}/${repo}:1`;
  const built = spawnSync('docker', ['build', '-q', '-t', pushed, '-'], { input: `FROM ${ECHO}\nRUN echo ${suffix()} > /unique\n`, encoding: 'utf8' });
  assert.is(built.status, 0, built.stderr);
  await dockerCli('push', pushed);
  await dockerCli('rmi', pushed);
  proxy = await startStallingRegistry({ upstream: REGISTRY });
});

test.after(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await removeHostContainers(host);
  await proxy?.close();
  await bus.close();
  await nats.cleanup();
  await dockerCli('rmi', refThroughProxy()).catch(() => undefined);
});

test('a pull whose layer download stalls is aborted after the stall timeout as a retryable PullStalledError', async () => {
  const ref = refThroughProxy();
  assert.not.ok(await present(ref), 'the image is not present locally before the pull');
  const runtime = new DockerRuntime(docker, { pullStallMs: STALL_MS });
  const t0 = performance.now();
  let err: unknown;
  await runtime.pull(ref).catch((e: unknown) => (err = e));
  log.info({ ms: Math.round(performance.now() - t0) }, 'stall detected');
  assert.instance(err, PullStalledError);
  assert.ok(isRetryable(err));
  assert.match((err as Error).message, `pull of ${ref} stalled: no progress for 2 s`);
  assert.ok(proxy.stalled >= 1, 'a blob download was stalled (the manifest came through)');
  assert.ok(proxy.requests.some((r) => r.includes('/manifests/')));
  assert.not.ok(await present(ref));
});

test('the worker reports the stalled pull as a retryable failure, then applies the revision once the registry sends', async () => {
  const ref = refThroughProxy();
  assert.not.ok(await present(ref));
  const app = `stall-${suffix()}`;
  const results = collectResults(nc, app);
  const runtime = new DockerRuntime(docker, { pullStallMs: STALL_MS });
  const w = createWorker({
    hostId: host,
    apps: [app],
    ...(await bus.host(host, [app], { ackWaitMs: 5_000 })),
    runtime,
    hostFacts: { cores: 2, memory_mb: 4096 },
    log,
    options: {
      heartbeatIntervalMs: 500,
      ackWaitMs: 5_000,
      fetchExpiresMs: 2_000,
      retryBaseMs: 500,
      retryMaxMs: 1_000,
      stopTimeoutSeconds: 1,
      pollMs: 100,
      settleMs: 1_000,
    },
  });
  workers.push(w);
  await w.start();
  const stalledBefore = proxy.stalled;
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: ref }));
  const failed = await results.waitFor(1, 'failed', 30_000);
  assert.match(failed.error ?? '', /^PullStalledError: pull of \S+ stalled: no progress for 2 s \(retrying\)$/, failed.error ?? '');
  assert.ok(proxy.stalled > stalledBefore);
  assert.is((await containersOf(host)).size, 0, 'nothing was created without the image');

  proxy.stalling = false; // the registry recovers
  const applied = await results.waitFor(1, 'applied', 30_000);
  assert.equal(
    applied.containers.map((c) => c.state),
    ['running'],
  );
  assert.ok(applied.image_digest?.startsWith(`${proxy.host}/${repo}@sha256:`), applied.image_digest ?? '');
  results.stop();
});

test.run();
