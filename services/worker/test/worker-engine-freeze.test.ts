import type { NatsConnection } from '@nats-io/transport-node';
import type { AppConfigInput } from '@nebula/contracts';
import { type Fleet, startFleet, startNatsServer, type TestHost, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { createDockerClient } from '../src/runtime/docker-client.ts';
import { DockerRuntime } from '../src/runtime/docker-runtime.ts';
import { createWorker, type Worker } from '../src/worker.ts';
import { REGISTRY } from './docker-helpers.ts';
import { collectResults, createStreams, envelope, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * A Docker engine frozen with SIGSTOP in the middle of a roll (a throwaway host with its own
 * dockerd), then thawed: the worker reports a failed, retryable result naming the engine call that
 * hung, within the call's deadline, keeps working (heartbeats, stop), and converges after the thaw.
 */
const CALL_TIMEOUT_MS = 2_000;
/** From the local registry (every fleet host reaches it at 127.0.0.1:5000): no Docker Hub lookups. */
const IMAGE = `${REGISTRY}/nebula/echo:1`;
let nats: TestNatsServer;
let nc: NatsConnection;
let bus: TestBus;
let fleet: Fleet;
let node: TestHost;
const workers: Worker[] = [];

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  nc = bus.admin;
  await createStreams(nc);
  fleet = await startFleet({ hosts: 1 });
  node = fleet.hosts[0]!;
});

test.after(async () => {
  await node?.thawEngine().catch(() => undefined);
  for (const w of workers) await w.stop().catch(() => undefined);
  await bus.close();
  await nats.cleanup();
  await fleet?.cleanup();
});

async function answer(port: number): Promise<{ env: Record<string, string> } | null> {
  try {
    return (await (await fetch(`http://${node.address}:${port}/`, { signal: AbortSignal.timeout(1_000) })).json()) as { env: Record<string, string> };
  } catch {
    return null;
  }
}

async function revisions(app: string): Promise<string[]> {
  const out = await node.docker('ps', '-a', '--filter', `label=${LABELS.app}=${app}`, '--format', `{{.Names}} {{.Label "${LABELS.revision}"}} {{.State}}`);
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

test('frozen mid-roll: a failed, retryable result naming the hung call within its deadline; after the thaw the roll completes', async () => {
  const docker = createDockerClient(node.dockerHost);
  const runtime = new DockerRuntime(docker, { callTimeoutMs: CALL_TIMEOUT_MS });
  const hostId = `freeze-${suffix()}`;
  const app = `frz-${suffix()}`;
  const port = 18_080;
  const results = collectResults(nc, app);
  const w = createWorker({
    hostId,
    apps: [app],
    ...(await bus.host(hostId, [app], { ackWaitMs: 5_000 })),
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
      rollSettleMs: 1_500,
      settleMs: 1_000,
      pollMs: 100,
      healthCheckIntervalMs: 500,
    },
  });
  workers.push(w);
  await w.start();
  const cfg = (v: string): AppConfigInput => ({
    docker_image: IMAGE,
    starting_ports: [{ [String(port)]: '80' }],
    containers_per: { server: 3 },
    env_vars: { V: v },
  });
  await publishApp(bus, envelope(app, 1, 'create', cfg('1')));
  assert.is((await results.waitFor(1)).status, 'applied');

  await publishApp(bus, envelope(app, 2, 'roll', cfg('2')));
  // The first container rolled, the roll waiting for it to settle: freeze the engine there.
  await waitFor('the first container rolled', async () => (await revisions(app)).includes(`${app}-1 2 running`), 20_000, 50);
  await node.freezeEngine();
  const frozenAt = performance.now();
  const failed = await results.waitFor(2, 'failed', 20_000);
  const detectedMs = performance.now() - frozenAt;
  log.info({ detectedMs: Math.round(detectedMs), error: failed.error }, 'frozen engine reported');
  assert.match(
    failed.error ?? '',
    /^EngineTimeoutError: docker engine call `[a-z ]+ frz-\w+-[123]` did not answer within 2 s \(retrying\)$/,
    failed.error ?? '',
  );

  // The worker itself is not stuck: heartbeats go on (without container states) while frozen.
  const beats: string[] = [];
  const sub = nc.subscribe(`hosts.${hostId}`);
  void (async () => {
    for await (const m of sub) beats.push(m.string());
  })();
  await waitFor('two heartbeats while frozen', () => beats.length >= 2, 20_000);
  sub.unsubscribe();

  await node.thawEngine();
  const applied = await results.waitFor(2, 'applied', 60_000);
  assert.equal(
    applied.containers.map((c) => c.state),
    ['running', 'running', 'running'],
  );
  assert.equal(await revisions(app), [`${app}-1 2 running`, `${app}-2 2 running`, `${app}-3 2 running`]);
  for (const p of [port, port + 1, port + 2]) {
    const a = await waitFor(`port ${p} to answer`, async () => (await answer(p)) ?? undefined, 20_000, 100);
    assert.is(a.env.V, '2');
  }
  results.stop();
});

test.run();
