import type { NatsConnection } from '@nats-io/transport-node';
import type { AppConfigInput } from '@nebula/contracts';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { DockerRuntime } from '../src/runtime/docker-runtime.ts';
import { createWorker, type Worker, type WorkerOptions } from '../src/worker.ts';
import { answers, containersOf, docker, dockerCli, ECHO, echo, freePortRange, REGISTRY, removeHostContainers } from './docker-helpers.ts';
import { collectResults, createStreams, envelope, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/** Every action against the real Docker engine and a real nats-server, checked from outside. */
let nats: TestNatsServer;
let nc: NatsConnection;
let bus: TestBus;
const runtime = new DockerRuntime(docker);
const hosts: string[] = [];
const workers: Worker[] = [];
const images: string[] = [];
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

const ids = async (host: string) => new Map([...(await containersOf(host))].map(([name, c]) => [name, c.Id]));

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
  for (const i of images) await removeImage(i);
});

/** Removes a test image by id, or every local reference (tags and digests) of a test repository. */
async function removeImage(ref: string): Promise<void> {
  const refs = ref.startsWith('sha256:')
    ? [ref]
    : (
        await dockerCli('images', '--digests', '--filter', `reference=${ref}`, '--format', '{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}').catch(
          () => '',
        )
      )
        .split(/\s+/)
        .filter((r) => r !== '' && !r.endsWith(':<none>') && !r.endsWith('@<none>'));
  for (const r of refs) await dockerCli('rmi', r).catch(() => undefined);
}

test('create, update, count up and down, stop, start, restart, roll, delete: env and ports seen from outside', async () => {
  const host = newHost();
  const app = `echo-${suffix()}`;
  const port = await freePortRange(3);
  const results = collectResults(nc, app);
  await startWorker(host, [app]);
  const cfg = (extra: Partial<AppConfigInput> = {}): AppConfigInput => ({
    docker_image: ECHO,
    starting_ports: [{ [String(port)]: '8080' }],
    env_vars: { PORT: '8080', GREETING: 'hello' },
    containers_per: { server: 2 },
    ...extra,
  });

  // create: two containers, host ports port and port+1, our labels, unless-stopped.
  await publishApp(bus, envelope(app, 1, 'create', cfg()));
  const r1 = await results.waitFor(1);
  assert.is(r1.status, 'applied', r1.error ?? '');
  for (const p of [port, port + 1]) {
    const a = await answers(p);
    assert.is(a.port, 8080);
    assert.is(a.env.GREETING, 'hello');
  }
  const first = await containersOf(host);
  assert.equal([...first.keys()].sort(), [`${app}-1`, `${app}-2`]);
  const info = await docker.getContainer(first.get(`${app}-2`)!.Id).inspect();
  assert.is(info.HostConfig.RestartPolicy?.Name, 'unless-stopped');
  assert.is(info.Config.Labels[LABELS.index], '2');
  assert.is(info.Config.Labels[LABELS.revision], '1');
  assert.ok(info.NetworkSettings.Networks.nebula && info.NetworkSettings.Networks.bridge, 'on the nebula bridge and on bridge');

  // update: new env, every container replaced at once.
  await publishApp(bus, envelope(app, 2, 'update', cfg({ env_vars: { PORT: '8080', GREETING: 'bye' } })));
  assert.is((await results.waitFor(2)).status, 'applied');
  for (const p of [port, port + 1]) assert.is((await answers(p)).env.GREETING, 'bye');
  const second = await ids(host);
  for (const [name, c] of first) assert.is.not(second.get(name), c.Id, `${name} replaced`);

  // count up: only the new one is made.
  await publishApp(bus, envelope(app, 3, 'update', cfg({ env_vars: { PORT: '8080', GREETING: 'bye' }, containers_per: { server: 3 } })));
  assert.is((await results.waitFor(3)).status, 'applied');
  assert.is((await answers(port + 2)).env.GREETING, 'bye');
  const third = await ids(host);
  assert.is(third.get(`${app}-1`), second.get(`${app}-1`));
  assert.is(third.get(`${app}-2`), second.get(`${app}-2`));

  // count down: only the extra ones go.
  await publishApp(bus, envelope(app, 4, 'update', cfg({ env_vars: { PORT: '8080', GREETING: 'bye' }, containers_per: { server: 1 } })));
  assert.is((await results.waitFor(4)).status, 'applied');
  const fourth = await ids(host);
  assert.equal([...fourth.keys()], [`${app}-1`]);
  assert.is(fourth.get(`${app}-1`), third.get(`${app}-1`));
  assert.is(await echo(port + 1), null);

  // stop, then start.
  await publishApp(bus, envelope(app, 5, 'stop', cfg({ running: false, containers_per: { server: 1 } })));
  assert.is((await results.waitFor(5)).status, 'applied');
  assert.is((await containersOf(host)).size, 0);
  assert.is(await echo(port), null);
  await publishApp(bus, envelope(app, 6, 'start', cfg({ containers_per: { server: 1 } })));
  assert.is((await results.waitFor(6)).status, 'applied');
  assert.is((await answers(port)).env.GREETING, 'hello');

  // restart: same config, new container.
  const beforeRestart = await ids(host);
  await publishApp(bus, envelope(app, 7, 'restart', cfg({ containers_per: { server: 1 } })));
  assert.is((await results.waitFor(7)).status, 'applied');
  assert.is.not((await ids(host)).get(`${app}-1`), beforeRestart.get(`${app}-1`));
  await answers(port);

  // roll over three: each new container starts after the previous one is up.
  await publishApp(bus, envelope(app, 8, 'update', cfg({ containers_per: { server: 3 } })));
  await results.waitFor(8);
  await publishApp(bus, envelope(app, 9, 'roll', cfg({ containers_per: { server: 3 }, env_vars: { PORT: '8080', GREETING: 'rolled' } })));
  const r9 = await results.waitFor(9);
  assert.is(r9.status, 'applied', r9.error ?? '');
  const rolled = await Promise.all([1, 2, 3].map((i) => docker.getContainer(`${app}-${i}`).inspect()));
  for (let i = 1; i < rolled.length; i++) {
    assert.ok(Date.parse(rolled[i]!.Created) >= Date.parse(rolled[i - 1]!.State.StartedAt), `${app}-${i + 1} made after ${app}-${i} was up`);
  }
  for (const p of [port, port + 1, port + 2]) assert.is((await answers(p)).env.GREETING, 'rolled');

  // delete: everything of the app goes.
  await publishApp(bus, envelope(app, 10, 'delete', cfg()));
  assert.is((await results.waitFor(10)).status, 'applied');
  assert.is((await containersOf(host)).size, 0);
  results.stop();
});

test('pull after the same tag is pushed again with new content: containers replaced, new content served', async () => {
  const host = newHost();
  const app = `pull-${suffix()}`;
  const repo = `${REGISTRY}/nebula-test-${suffix()}/echo`;
  const ref = `${repo}:1`;
  await dockerCli('tag', ECHO, ref);
  await dockerCli('push', ref);
  const port = await freePortRange(2);
  const results = collectResults(nc, app);
  await startWorker(host, [app]);
  const cfg: AppConfigInput = { docker_image: ref, starting_ports: [{ [String(port)]: '80' }], containers_per: { server: 2 } };
  await publishApp(bus, envelope(app, 1, 'create', cfg));
  assert.is((await results.waitFor(1)).status, 'applied');
  const v1 = (await answers(port)).version;

  // pull with nothing new: nothing replaced.
  const before = await ids(host);
  await publishApp(bus, envelope(app, 2, 'pull', cfg));
  const r2 = await results.waitFor(2);
  assert.is(r2.status, 'applied');
  assert.equal(await ids(host), before);

  // Push new content under the same tag, then put the old image back under the tag locally.
  const oldId = await dockerCli('image', 'inspect', '-f', '{{.Id}}', ref);
  const build = `FROM ${ECHO}\nRUN echo 2-${suffix()} > /version\n`;
  const { spawnSync } = await import('node:child_process');
  const built = spawnSync('docker', ['build', '-q', '-t', ref, '-'], { input: build, encoding: 'utf8' });
  assert.is(built.status, 0, built.stderr);
  await dockerCli('push', ref);
  const newId = await dockerCli('image', 'inspect', '-f', '{{.Id}}', ref);
  images.push(repo, newId);
  await dockerCli('tag', oldId, ref);

  await publishApp(bus, envelope(app, 3, 'pull', cfg));
  const r3 = await results.waitFor(3);
  assert.is(r3.status, 'applied', r3.error ?? '');
  assert.ok(r3.image_digest?.startsWith(`${ref.replace(/:1$/, '')}@sha256:`), r3.image_digest ?? 'no digest');
  for (const p of [port, port + 1]) {
    const a = await answers(p, (x) => x.version !== v1);
    assert.match(a.version, /^2-/);
  }
  const after = await ids(host);
  for (const [name, id] of before) assert.is.not(after.get(name), id);
  results.stop();
});

test('two apps on one host; a bad image fails cleanly while the other app keeps serving and updating', async () => {
  const host = newHost();
  const [good, bad] = [`good-${suffix()}`, `bad-${suffix()}`];
  const port = await freePortRange(1);
  const rGood = collectResults(nc, good);
  const rBad = collectResults(nc, bad);
  await startWorker(host, [good, bad]);
  await publishApp(bus, envelope(good, 1, 'create', { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], env_vars: { V: '1' } }));
  await publishApp(bus, envelope(bad, 1, 'create', { docker_image: `${REGISTRY}/nebula-missing-${suffix()}/echo:1` }));
  const failed = await rBad.waitFor(1);
  assert.is(failed.status, 'failed');
  assert.match(failed.error ?? '', /ImageNotFoundError/);
  assert.is((await rGood.waitFor(1)).status, 'applied');
  assert.is((await answers(port)).env.V, '1');
  await publishApp(bus, envelope(good, 2, 'update', { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], env_vars: { V: '2' } }));
  assert.is((await rGood.waitFor(2)).status, 'applied');
  assert.is((await answers(port)).env.V, '2');
  assert.equal([...(await containersOf(host)).keys()], [`${good}-1`]);
  rGood.stop();
  rBad.stop();
});

test('a taken host port fails the revision and leaves nothing half-made', async () => {
  const host = newHost();
  const app = `port-${suffix()}`;
  const port = await freePortRange(1);
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(port, '0.0.0.0', () => r()));
  const results = collectResults(nc, app);
  await startWorker(host, [app]);
  try {
    await publishApp(bus, envelope(app, 1, 'create', { docker_image: ECHO, starting_ports: [port] }));
    const r = await results.waitFor(1);
    assert.is(r.status, 'failed');
    assert.match(r.error ?? '', /PortConflictError/, r.error ?? '');
    assert.is((await containersOf(host)).size, 0);
  } finally {
    blocker.close();
    results.stop();
  }
});

test('a roll stops at a container that turns unhealthy and puts the previous revision back; the others were never touched', async () => {
  const host = newHost();
  const app = `roll-${suffix()}`;
  const port = await freePortRange(2);
  const results = collectResults(nc, app);
  await startWorker(host, [app]);
  const cfg: AppConfigInput = { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], containers_per: { server: 2 }, env_vars: { V: '1' } };
  await publishApp(bus, envelope(app, 1, 'create', cfg));
  assert.is((await results.waitFor(1)).status, 'applied');
  const before = await ids(host);
  await publishApp(
    bus,
    envelope(app, 2, 'roll', { ...cfg, env_vars: { V: '2' }, healthcheck: { test: ['CMD', 'false'], interval_seconds: 0.5, timeout_seconds: 1, retries: 1 } }),
  );
  const r = await results.waitFor(2);
  assert.is(r.status, 'failed');
  assert.match(r.error ?? '', /ContainerFailedError.*unhealthy/);
  assert.match(r.error ?? '', /: previous revision 1 put back$/);
  const after = await ids(host);
  assert.equal(after, before, 'the previous containers, by id: the first put back, the second never touched');
  assert.is((await answers(port)).env.V, '1');
  assert.is((await answers(port + 1)).env.V, '1');
  results.stop();
});

test('an update whose process exits at once is reported failed and the previous containers serve again, same containers and port', async () => {
  const host = newHost();
  const app = `crash-${suffix()}`;
  const port = await freePortRange(1);
  const results = collectResults(nc, app);
  await startWorker(host, [app]);
  const cfg: AppConfigInput = { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], env_vars: { V: '1' } };
  await publishApp(bus, envelope(app, 1, 'create', cfg));
  assert.is((await results.waitFor(1)).status, 'applied');
  const before = await ids(host);
  // The echo image runs its arguments instead of the server: `false` exits with code 1 at once.
  await publishApp(bus, envelope(app, 2, 'update', { ...cfg, env_vars: { V: '2' }, command: ['false'] }));
  const r = await results.waitFor(2);
  assert.is(r.status, 'failed');
  assert.match(
    r.error ?? '',
    new RegExp(`^ContainerFailedError: ${app}-1 (exited with code 1|restarted( \\d+ time\\(s\\))?) within 1 s of starting: previous revision 1 put back$`),
    r.error ?? '',
  );
  assert.equal(await ids(host), before, 'the previous container, not a new one');
  assert.equal(
    r.containers.map((c) => [c.name, c.state]),
    [[`${app}-1`, 'running']],
  );
  assert.is((await answers(port)).env.V, '1');
  results.stop();
});

test('a backlog of five revisions is applied as one, the others reported superseded', async () => {
  const host = newHost();
  const app = `backlog-${suffix()}`;
  const port = await freePortRange(1);
  const results = collectResults(nc, app);
  const cfg = (v: number): AppConfigInput => ({ docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], env_vars: { V: String(v) } });
  let w = await startWorker(host, [app]);
  await publishApp(bus, envelope(app, 1, 'create', cfg(1)));
  assert.is((await results.waitFor(1)).status, 'applied');
  await w.stop();
  for (let rev = 2; rev <= 6; rev++) await publishApp(bus, envelope(app, rev, 'update', cfg(rev)));
  const events: string[] = [];
  const stream = await docker.getEvents({ filters: { type: ['container'], event: ['create'], label: [`${LABELS.host}=${host}`] } });
  stream.on('data', (d: Buffer) => events.push(d.toString()));
  w = await startWorker(host, [app]);
  const r6 = await results.waitFor(6);
  assert.is(r6.status, 'applied');
  await waitFor('four superseded', () => results.all.filter((r) => r.status === 'superseded').length === 4);
  assert.equal(
    results.all
      .filter((r) => r.status === 'superseded')
      .map((r) => r.revision)
      .sort(),
    [2, 3, 4, 5],
  );
  assert.is((await answers(port)).env.V, '6');
  (stream as unknown as { destroy(): void }).destroy();
  assert.is(events.length, 1, 'one container created, for revision 6');
  results.stop();
});

test.run();
