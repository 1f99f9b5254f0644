import { jetstreamManager } from '@nats-io/jetstream';
import { heartbeatSchema, hostUsageSchema, streams, subjects } from '@nebula/contracts';
import { decode } from '@nebula/messaging';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { statsFigures } from '../src/runtime/stats-figures.ts';
import { cpuPercent, UsageGatherer } from '../src/usage.ts';
import { createWorker, type Worker } from '../src/worker.ts';
import { collectResults, createStreams, envelope, FAST_WORKER, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * Usage for reports: the figures (pure), a sample from the fake runtime, and heartbeats that carry
 * the latest sample (gathered on its own interval, not at every heartbeat) through a real nats-server.
 */

test('statsFigures: CPU as docker stats computes it, memory without the page cache (cgroup v1 and v2)', () => {
  const v2 = statsFigures({
    cpu_stats: { cpu_usage: { total_usage: 3_000_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 4 },
    precpu_stats: { cpu_usage: { total_usage: 2_000_000_000 }, system_cpu_usage: 10_000_000_000 },
    memory_stats: { usage: 100 * 1024 * 1024, limit: 1024 * 1024 * 1024, stats: { inactive_file: 20 * 1024 * 1024 } },
  });
  assert.equal(v2, { cpuPercent: 40, memoryBytes: 80 * 1024 * 1024, memoryLimitBytes: 1024 * 1024 * 1024 });
  const v1 = statsFigures({ memory_stats: { usage: 1000, stats: { total_inactive_file: 400 } } });
  assert.equal(v1, { cpuPercent: null, memoryBytes: 600, memoryLimitBytes: null });
  // A stopped container: the engine sends zeros and no previous reading.
  assert.equal(statsFigures({ cpu_stats: { cpu_usage: { total_usage: 0 } }, precpu_stats: {}, memory_stats: {} }), {
    cpuPercent: null,
    memoryBytes: null,
    memoryLimitBytes: null,
  });
});

test('property: host CPU percent is within 0..100 or null, whatever two readings say', () => {
  const times = fc.record({ idle: fc.nat(), total: fc.nat() });
  fc.assert(
    fc.property(fc.option(times, { nil: null }), times, (prev, cur) => {
      const p = cpuPercent(prev, cur);
      assert.ok(p === null || (p >= 0 && p <= 100), String(p));
      if (prev === null) assert.is(p, null);
    }),
  );
});

test('a sample from the fake runtime: host figures, each running container of ours, the disk of the data root', async () => {
  const rt = new FakeRuntime();
  rt.registry.set('img:1', 'sha256:img1');
  const spec = (name: string, app: string) => ({
    name,
    image: 'img:1',
    env: {},
    ports: [],
    volumes: [],
    devices: [],
    privileged: false,
    networks: ['bridge'],
    command: null,
    entrypoint: null,
    labels: { 'io.nebula.owner': 'nebula', 'io.nebula.host': 'h1', 'io.nebula.app': app },
    memoryLimitMb: null,
    cpuLimit: null,
    healthcheck: null,
  });
  const busy = rt.seed(spec('web-2', 'web'));
  rt.seed(spec('web-1', 'web'));
  rt.seed(spec('old-1', 'old'), 'exited');
  rt.seed({ ...spec('theirs', 'x'), labels: {} });
  rt.stats.set(busy, { cpuPercent: 150, memoryBytes: 2048, memoryLimitBytes: null });
  let reading = { idle: 0, total: 0 };
  const g = new UsageGatherer({
    runtime: rt,
    hostId: 'h1',
    cores: 2,
    callTimeoutMs: 1000,
    cpuTimes: () => reading,
    memory: () => ({ total: 8000, free: 6000 }),
    load: () => 0.25,
    statfs: async () => ({ bsize: 4096, blocks: 100, bavail: 25 }),
    now: () => new Date('2026-12-05T10:00:00.000Z'),
  });
  reading = { idle: 50, total: 200 };
  const u = await g.gather();
  assert.ok(hostUsageSchema.safeParse(u).success);
  assert.equal(u.cpu, { cores: 2, used_percent: 75, load_1m: 0.25 });
  assert.equal(u.memory, { used_bytes: 2000, total_bytes: 8000 });
  assert.equal(u.disk, { path: '/', total_bytes: 409_600, used_bytes: 307_200 });
  assert.equal(
    u.containers.map((c) => [c.name, c.app, c.cpu_percent, c.memory_bytes]),
    [
      ['web-1', 'web', 1.5, 32 * 1024 * 1024],
      ['web-2', 'web', 150, 2048],
    ],
  );
  assert.is(g.latest, u);

  // An engine that is down, a data root that cannot be read: a sample all the same, with what is known.
  rt.engineDown = true;
  const down = await g.gather();
  assert.is(down.disk, null);
  assert.equal(down.containers, []);
  assert.equal(down.memory, { used_bytes: 2000, total_bytes: 8000 });
});

let nats: TestNatsServer;
let bus: TestBus;
const workers: Worker[] = [];

test('heartbeats carry the latest sample; a new one only every report interval; none when reports are off', async () => {
  nats = await startNatsServer();
  bus = await startTestBus(nats);
  await createStreams(bus.admin);
  const jsm = await jetstreamManager(bus.admin);
  const start = async (hostId: string, app: string, reportIntervalMs: number) => {
    const rt = new FakeRuntime();
    rt.registry.set('img:1', 'sha256:img1');
    const options = { ...FAST_WORKER, heartbeatIntervalMs: 100, reportIntervalMs };
    const w = createWorker({
      hostId,
      apps: [app],
      ...(await bus.host(hostId, [app], options)),
      runtime: rt,
      hostFacts: { cores: 2, memory_mb: 2048 },
      log,
      options,
    });
    workers.push(w);
    await w.start();
    return w;
  };
  const lastHeartbeat = async (hostId: string) => {
    const m = await jsm.streams.getMessage(streams.hosts.name, { last_by_subj: subjects.heartbeat(hostId) });
    return m ? decode(heartbeatSchema, m.data) : null;
  };

  const app = `web-${suffix()}`;
  const results = collectResults(bus.admin, app);
  const host = `u-${suffix()}`;
  // An hour between samples: only the one at start within this test.
  await start(host, app, 3_600_000);
  await publishApp(bus, envelope(app, 1, 'create', { docker_image: 'img:1', containers_per: { server: 2 } }));
  await results.waitFor(1, 'applied');
  const first = await waitFor('a heartbeat with a sample', async () => (await lastHeartbeat(host))?.usage);
  assert.ok(first.cpu.cores >= 1 && first.memory.total_bytes > 0);
  // Heartbeats go on (several of them), with the same sample.
  const seenAt = (await lastHeartbeat(host))?.at;
  const later = await waitFor('a later heartbeat', async () => {
    const h = await lastHeartbeat(host);
    return h && h.at !== seenAt ? h : undefined;
  });
  assert.is(later.usage?.gathered_at, first.gathered_at);
  results.stop();

  const quiet = `q-${suffix()}`;
  await start(quiet, `other-${suffix()}`, 0);
  const hb = await waitFor('a heartbeat', () => lastHeartbeat(quiet));
  assert.is(hb?.usage, undefined);
});

test.after(async () => {
  for (const w of workers) await w.stop();
  await bus?.close();
  await nats?.cleanup();
});

test.run();
