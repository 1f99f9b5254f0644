import { spawnSync } from 'node:child_process';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { heartbeatSchema, streams, subjects } from '@nebula/contracts';
import { decode } from '@nebula/messaging';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DockerRuntime } from '../src/runtime/docker-runtime.ts';
import { createWorker, type Worker, type WorkerOptions } from '../src/worker.ts';
import { answers, containersOf, docker, dockerCli, ECHO, freePortRange, REGISTRY, removeHostContainers } from './docker-helpers.ts';
import { collectResults, createStreams, envelope, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * Drift repaired on the real Docker engine: containers removed and stopped by hand (`docker rm -f`,
 * `docker stop`), an adoption that fails at start because the image is not in the registry yet,
 * log rotation on the containers, replaced images removed. Reconcile interval: 1 s.
 */
let nats: TestNatsServer;
let nc: NatsConnection;
let bus: TestBus;
const runtime = new DockerRuntime(docker);
const hosts: string[] = [];
const workers: Worker[] = [];
const repos: string[] = [];
const OPTIONS: Partial<WorkerOptions> = {
  heartbeatIntervalMs: 500,
  ackWaitMs: 5_000,
  fetchExpiresMs: 2_000,
  retryBaseMs: 200,
  retryMaxMs: 1_000,
  stopTimeoutSeconds: 1,
  rollSettleMs: 300,
  settleMs: 1_000,
  pollMs: 100,
  healthCheckIntervalMs: 500,
  reconcileIntervalMs: 1_000,
  reconcileMaxBackoffMs: 2_000,
};

async function startWorker(hostId: string, apps: string[]): Promise<Worker> {
  const w = createWorker({
    hostId,
    apps,
    ...(await bus.host(hostId, apps, OPTIONS)),
    runtime,
    hostFacts: { cores: 2, memory_mb: 4096 },
    log,
    options: OPTIONS,
  });
  workers.push(w);
  await w.start();
  return w;
}

function newHost(): string {
  const h = `t-${suffix()}`;
  hosts.push(h);
  return h;
}

/** Every local reference (tags and digests) of a test repository. */
async function removeRepo(repo: string): Promise<void> {
  const refs = (
    await dockerCli('images', '--digests', '--filter', `reference=${repo}`, '--format', '{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}').catch(() => '')
  )
    .split(/\s+/)
    .filter((r) => r !== '' && !r.endsWith(':<none>') && !r.endsWith('@<none>'));
  for (const r of refs) await dockerCli('rmi', r).catch(() => undefined);
}

const imageId = (ref: string) => dockerCli('image', 'inspect', '-f', '{{.Id}}', ref).catch(() => null);

test.before(async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  nc = bus.admin;
  await createStreams(nc);
});

test.after(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await bus.close();
  await nats.cleanup();
  for (const h of hosts) await removeHostContainers(h);
  for (const r of repos) await removeRepo(r);
});

test('a container removed by hand and another stopped by hand are both back within one interval; log rotation is on', async () => {
  const host = newHost();
  const app = `drift-${suffix()}`;
  const port = await freePortRange(3);
  const results = collectResults(nc, app);
  const w = await startWorker(host, [app]);
  await publishApp(
    bus,
    envelope(app, 1, 'create', { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], containers_per: { server: 3 }, env_vars: { V: '1' } }),
  );
  assert.is((await results.waitFor(1)).status, 'applied');
  for (const p of [port, port + 1, port + 2]) await answers(p);
  const before = await containersOf(host);
  const info = await docker.getContainer(before.get(`${app}-1`)!.Id).inspect();
  assert.equal(info.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-file': '3', 'max-size': '10m' } });

  const t0 = Date.now();
  await dockerCli('rm', '-f', `${app}-2`);
  await dockerCli('stop', '-t', '0', `${app}-3`);
  const back = await waitFor(
    'both back and running',
    async () => {
      const now = await containersOf(host);
      return [1, 2, 3].every((i) => now.get(`${app}-${i}`)?.State === 'running') ? now : undefined;
    },
    10_000,
    100,
  );
  const tookMs = Date.now() - t0;
  for (const p of [port, port + 1, port + 2]) assert.is((await answers(p)).env.V, '1');
  assert.is(back.get(`${app}-1`)?.Id, before.get(`${app}-1`)?.Id, 'the one that did not drift is untouched');
  assert.is.not(back.get(`${app}-2`)?.Id, before.get(`${app}-2`)?.Id);
  assert.is(w.repairs()[app]?.repairs, 2);
  const jsm = await jetstreamManager(nc);
  const hb = await waitFor('a heartbeat with the repairs', async () => {
    const m = await jsm.streams.getMessage(streams.hosts.name, { last_by_subj: subjects.heartbeat(host) });
    const h = m && decode(heartbeatSchema, m.data);
    return h && h.apps[0]?.repairs === 2 ? h : undefined;
  });
  // One pass may find both, or the removal first and the stop at the next tick: the last names what it repaired.
  assert.match(hb.apps[0]?.last_repair?.what ?? '', new RegExp(`(created ${app}-2: missing|replaced ${app}-3: not running \\(exited\\))`));
  console.log(`  drift repaired ${tookMs} ms after docker rm -f / docker stop (interval 1000 ms)`);
  results.stop();
});

test('a container whose process is killed from the host (as the kernel OOM killer does) serves again', async () => {
  const host = newHost();
  const app = `oom-${suffix()}`;
  const port = await freePortRange(1);
  const results = collectResults(nc, app);
  const w = await startWorker(host, [app]);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }] }));
  assert.is((await results.waitFor(1)).status, 'applied');
  await answers(port);
  const pid = (await docker.getContainer(`${app}-1`).inspect()).State.Pid;
  const t0 = Date.now();
  process.kill(pid, 'SIGKILL');
  await waitFor(
    'the container to have exited',
    async () =>
      (
        await docker
          .getContainer(`${app}-1`)
          .inspect()
          .catch(() => null)
      )?.State.Pid !== pid,
    10_000,
    20,
  );
  await answers(port);
  // Docker's restart policy (unless-stopped) brings it back; the reconcile would if it did not.
  console.log(`  killed from the host: serving again after ${Date.now() - t0} ms (repairs by the reconcile: ${w.repairs()[app]?.repairs})`);
  results.stop();
});

test('an adoption that fails at start (the image is not in the registry yet) is retried by the reconcile loop and succeeds once it is pushed', async () => {
  const host = newHost();
  const app = `adopt-${suffix()}`;
  const repo = `${REGISTRY}/nebula-test-${suffix()}/echo`;
  repos.push(repo);
  const ref = `${repo}:1`;
  const port = await freePortRange(1);
  const results = collectResults(nc, app);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: ref, starting_ports: [{ [String(port)]: '80' }] }));
  const w = await startWorker(host, [app]);
  // The consumer's delivery fails for good too (unknown image): only the loop can bring it up.
  const failed = await results.waitFor(1, 'failed');
  assert.match(failed.error ?? '', /ImageNotFoundError/);
  assert.equal(w.applied()[app], null);
  assert.is((await containersOf(host)).size, 0);
  await dockerCli('tag', ECHO, ref);
  await dockerCli('push', ref);
  await dockerCli('rmi', ref); // only the registry has it: the loop must pull
  const t0 = Date.now();
  await answers(port, () => true, 20_000);
  console.log(`  adopted ${Date.now() - t0} ms after the image was pushed (interval 1000 ms, backoff up to 2000 ms)`);
  assert.equal(w.applied()[app], { incarnation: 1, revision: 1 });
  assert.match(w.repairs()[app]?.last?.what ?? '', /adopted revision 1 after a failed start/);
  const applied = await results.waitFor(1, 'applied');
  assert.equal(
    applied.containers.map((c) => c.state),
    ['running'],
    'the host reports the revision applied after all',
  );
  results.stop();
});

test('replaced images are removed after an apply, keeping the current and the previous one', async () => {
  const host = newHost();
  const app = `gc-${suffix()}`;
  const repo = `${REGISTRY}/nebula-test-${suffix()}/echo`;
  repos.push(repo);
  const results = collectResults(nc, app);
  // Three distinct images under three tags of a repository of this test.
  for (const v of [1, 2, 3]) {
    const built = spawnSync('docker', ['build', '-q', '-t', `${repo}:${v}`, '-'], {
      input: `FROM ${ECHO}\nRUN echo gc-${v}-${suffix()} > /version\n`,
      encoding: 'utf8',
    });
    assert.is(built.status, 0, built.stderr);
  }
  const ids = await Promise.all([1, 2, 3].map((v) => imageId(`${repo}:${v}`)));
  await startWorker(host, [app]);
  for (const v of [1, 2, 3]) {
    await publishApp(bus, envelope(app, v, v === 1 ? 'create' : 'update', { docker_image: `${repo}:${v}` }));
    const r = await results.waitFor(v);
    assert.is(r.status, 'applied', r.error ?? '');
  }
  await waitFor(`${repo}:1 removed`, async () => (await imageId(ids[0]!)) === null, 10_000, 100);
  assert.is(await imageId(`${repo}:2`), ids[1], 'the previous image is kept for a rollback');
  assert.is(await imageId(`${repo}:3`), ids[2]);
  assert.ok((await imageId(ECHO)) !== null, 'the base image is untouched');
  results.stop();
});

test.run();
