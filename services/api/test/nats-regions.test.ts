import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect, type NatsConnection } from '@nats-io/transport-node';
import { busReconnectOptions } from '@nebula/bus-auth';
import type { NebulaClient, RolloutProgress } from '@nebula/client';
import { createLogger } from '@nebula/service-kit';
import { startNatsRegions, type TestRegion, type TestRegions, waitFor } from '@nebula/test-kit';
import { createWorker, FakeRuntime, joinBus, LABELS, type Worker } from '@nebula/worker';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type InProcessControlPlane, startControlPlane } from './control-plane.ts';
import { FAST_WORKER, http, silentLog, uniqueName } from './helpers.ts';

/**
 * Regions: a hub (the API's and the notifier's NATS server, JetStream domain `hub`) and two regions,
 * `eu` and `us`, each a leaf server with a domain of its own in a network namespace of its own
 * (test-kit startNatsRegions; root only). Three hosts per region (real worker code, the in-memory
 * runtime) join with a token naming their region and connect only to its server.
 *
 *   revision 1 everywhere ──▶ revision 2: eu's hosts start pulling ──▶ eu's link cut ──▶ their pulls
 *   end, results kept in eu ──▶ revision 3 during the cut: us applies it, eu keeps what it runs
 *   ──▶ link back: eu's revision-2 results arrive, eu converges to revision 3
 */
const test = suite('nats regions');
const app = uniqueName('web');
const PER_REGION = 3;
const REGIONS = ['eu', 'us'] as const;
const RECONNECT: Partial<ConnectionOptions> = { ...busReconnectOptions(), reconnectTimeWait: 200, reconnectJitter: 100, pingInterval: 2_000 };

interface Host {
  id: string;
  region: TestRegion;
  rt: FakeRuntime;
}

let net: TestRegions;
let cp: InProcessControlPlane;
let nebula: NebulaClient;
const conns: NatsConnection[] = [];
const hosts: Host[] = [];
const workers: Worker[] = [];
const buses: Array<{ close(): Promise<void> }> = [];
const dirs: string[] = [];
const figures: string[] = [];

const region = (name: string) => net.regions.find((r) => r.name === name) as TestRegion;
const inRegion = (name: string) => hosts.filter((h) => h.region.name === name);
const imageOf = (rt: FakeRuntime) =>
  [
    ...new Set(
      rt
        .all()
        .filter((c) => c.labels[LABELS.app] === app && c.state === 'running')
        .map((c) => c.imageId),
    ),
  ].join(',');

test.before(async () => {
  net = await startNatsRegions(REGIONS);
  const apiNc = await connect(net.hub.connectOptions('api', { ...RECONNECT, name: 'test-api' }));
  const notifierNc = await connect(net.hub.connectOptions('notifier', { ...RECONNECT, name: 'test-notifier' }));
  conns.push(apiNc, notifierNc);
  cp = await startControlPlane({
    apiNc,
    notifierNc,
    keys: net.hub.keys,
    hosts: {
      servers: [net.hub.url],
      revocationRetryMs: 200,
      tlsCa: readFileSync(net.caFile, 'utf8'),
      regions: net.regions.map((r) => ({ name: r.name, servers: [r.url] })),
    },
    notifier: { regions: [...REGIONS] },
  });
  nebula = cp.nebula;
  const api = cp.api;
  for (const r of net.regions) {
    for (let i = 0; i < PER_REGION; i++) {
      const id = `${app}-${r.name}${i}`;
      const token = await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: { uses: 1, apps: [app], region: r.name } });
      assert.is(token.status, 200, token.text);
      const dir = mkdtempSync(join(tmpdir(), 'nebula-region-host-'));
      dirs.push(dir);
      // The region's server only: its hosts never reach the hub.
      const bus = await joinBus({
        hostId: id,
        apps: [app],
        credentialsFile: join(dir, 'credentials.json'),
        nebulaUrl: api.url,
        joinToken: (token.body as { token: string }).token,
        consumer: { ack_wait_seconds: 5 },
        timeoutMs: 5000,
        log: createLogger('test-host', 'silent'),
        servers: [r.url],
        tlsCaFile: net.caFile,
        connect: RECONNECT,
      });
      buses.push(bus);
      const rt = new FakeRuntime();
      for (let n = 1; n <= 3; n++) rt.registry.set(`img:${n}`, `sha256:img${n}`);
      hosts.push({ id, region: r, rt });
      const w = createWorker({
        hostId: id,
        apps: [app],
        ...bus.host,
        runtime: rt,
        hostFacts: { cores: 2, memory_mb: 2048 },
        log: silentLog,
        options: FAST_WORKER,
      });
      workers.push(w);
      await w.start();
    }
  }
  const all = REGIONS.length * PER_REGION;
  await waitFor(`${all} hosts online`, async () => (await nebula.hosts.list.query({ app, status: 'online' })).hosts.length === all, 60_000, 100);
});

test.after(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  for (const b of buses) await b.close().catch(() => undefined);
  await cp?.close();
  for (const c of conns) await c.close().catch(() => undefined);
  await net?.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (figures.length > 0) process.stdout.write(`\n[figures] ${figures.join('; ')}\n`);
});

const rollout = (id: string): Promise<RolloutProgress> => nebula.rollouts.get.query({ id });
const appliedBy = async (id: string, ids: readonly string[]) => {
  const p = await rollout(id);
  return ids.every((h) => p.hosts.some((x) => x.host === h && x.state === 'applied'));
};

test('hosts show their region; the API and the notifier made each region its streams', async () => {
  const listed = await nebula.hosts.list.query({ app });
  for (const h of hosts) assert.is(listed.hosts.find((x) => x.id === h.id)?.region, h.region.name, h.id);
});

test('a region cut off in the middle of a rollout keeps what it runs, converges when the link returns, and its results arrive; the other region is not held up', async () => {
  const all = hosts.map((h) => h.id);
  const eu = inRegion('eu');
  const us = inRegion('us');
  const created = await nebula.apps.create.mutate({ name: app, docker_image: 'img:1', containers_per: { server: 1 } });
  await waitFor('revision 1 applied in both regions', () => appliedBy(created.rollout_id, all), 60_000, 100);

  // Revision 2 reaches eu (its hosts start pulling), then eu's link goes down before any of them ends.
  for (const h of eu) h.rt.holdPulls('img:2');
  const r2 = await nebula.apps.patch.mutate({ name: app, docker_image: 'img:2' });
  await waitFor('eu hosts pulling revision 2', async () => eu.every((h) => h.rt.pullsHeld > 0), 60_000, 50);
  region('eu').cut();
  const cutAt = Date.now();
  for (const h of eu) h.rt.releasePulls();
  await waitFor('eu hosts run revision 2 (cut off)', async () => eu.every((h) => imageOf(h.rt) === 'sha256:img2'), 60_000, 50);
  await waitFor(
    'us applied revision 2',
    () =>
      appliedBy(
        r2.rollout_id,
        us.map((h) => h.id),
      ),
    60_000,
    100,
  );

  // Revision 3 while eu is cut off: us applies it; eu keeps running revision 2, and its results have not arrived.
  const r3 = await nebula.apps.patch.mutate({ name: app, docker_image: 'img:3' });
  const r3Published = Date.now();
  await waitFor(
    'us applied revision 3 with eu cut off',
    () =>
      appliedBy(
        r3.rollout_id,
        us.map((h) => h.id),
      ),
    60_000,
    100,
  );
  figures.push(`revision 3 applied on us's ${PER_REGION} hosts ${Date.now() - r3Published} ms after the change, eu cut off`);
  const during = await rollout(r2.rollout_id);
  for (const h of eu) {
    assert.is(imageOf(h.rt), 'sha256:img2', `${h.id} keeps what it runs`);
    assert.not.ok(
      during.hosts.some((x) => x.host === h.id && x.state === 'applied'),
      `${h.id}: its revision-2 result is kept in eu while the link is down`,
    );
  }
  const perRegion = (await rollout(r3.rollout_id)) as RolloutProgress & { regions?: Record<string, { applied: number }> };
  assert.is(perRegion.regions?.us?.applied, PER_REGION, 'progress per region: us');
  assert.is(perRegion.regions?.eu?.applied ?? 0, 0, 'progress per region: eu');

  // The link back: eu's results of revision 2 arrive, and eu converges to revision 3.
  region('eu').heal();
  const healedAt = Date.now();
  await waitFor("eu's revision-2 results at the hub", () => appliedBy(r2.rollout_id, all), 90_000, 100);
  figures.push(`eu's results of revision 2 at the hub ${Date.now() - healedAt} ms after the link came back (cut ${healedAt - cutAt} ms)`);
  await waitFor('revision 3 applied everywhere', () => appliedBy(r3.rollout_id, all), 90_000, 100);
  figures.push(`eu converged to revision 3 ${Date.now() - healedAt} ms after the link came back`);
  for (const h of hosts) assert.is(imageOf(h.rt), 'sha256:img3', h.id);
});

test.run();
