import { type AppConfigInput, type AppMessage, type Result, WAVE_MESSAGE_VERSION } from '@nebula/contracts';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';
import { createWorker, type Worker } from '../src/worker.ts';
import { collectResults, createStreams, envelope, FAST_WORKER, log, publishApp, startTestBus, suffix, type TestBus } from './helpers.ts';

/**
 * A revision in waves, as the hosts see it: each wave is one message naming the hosts that run the
 * revision (cumulative), the others keep the wave's base, quietly. Several hosts (one worker and one
 * in-memory engine each, seen together through `Fleet`), a real nats-server.
 */
let nats: TestNatsServer;
let bus: TestBus;
const workers: Worker[] = [];

/** One engine per host; `all()` and `calls` over all of them, as one fake would show them. */
class Fleet {
  readonly engines = new Map<string, FakeRuntime>();
  of(host: string): FakeRuntime {
    let rt = this.engines.get(host);
    if (rt === undefined) {
      rt = new FakeRuntime();
      for (const ref of ['img:1', 'img:2', 'img:3']) rt.registry.set(ref, `sha256:${ref.replace(':', '')}`);
      this.engines.set(host, rt);
    }
    return rt;
  }
  all() {
    return [...this.engines.values()].flatMap((rt) => rt.all());
  }
  get calls() {
    return [...this.engines.values()].flatMap((rt) => rt.calls);
  }
}

function runtime(): Fleet {
  return new Fleet();
}

async function startWorker(hostId: string, app: string, fleet: Fleet): Promise<Worker> {
  const rt = fleet.of(hostId);
  const w = createWorker({
    hostId,
    apps: [app],
    ...(await bus.host(hostId, [app], FAST_WORKER)),
    runtime: rt,
    hostFacts: { cores: 2, memory_mb: 2048 },
    log,
    options: FAST_WORKER,
  });
  workers.push(w);
  await w.start();
  return w;
}

/** One wave of revision `m`: the same message for `hosts`, with the base the others run. */
function wave(m: AppMessage, step: number, hosts: string[], base: AppMessage | null): AppMessage {
  return {
    ...m,
    v: WAVE_MESSAGE_VERSION,
    wave: { step, hosts, base: base && { incarnation: base.incarnation, revision: base.revision, rollout_id: base.rollout_id, config: base.config } },
  };
}

/** What each host's containers of the app run: `host name revision image`, sorted. */
const running = (rt: Fleet, app: string) =>
  rt
    .all()
    .filter((c) => c.labels[LABELS.app] === app)
    .map((c) => `${c.labels[LABELS.host]} ${c.name} ${c.labels[LABELS.revision]} ${c.state}`)
    .sort();
const of = (results: Result[], revision: number) =>
  results
    .filter((r) => r.revision === revision)
    .map((r) => `${r.host} ${r.status}`)
    .sort();
/** Mutating engine calls on one host's containers (their ids), from `since` on. */
const touched = (rt: Fleet, host: string, ids: Set<string>, since: number) =>
  rt
    .of(host)
    .calls.slice(since)
    .filter((c) => c.id !== undefined && ids.has(c.id));
const idsOf = (rt: Fleet, host: string) =>
  new Set(
    rt
      .all()
      .filter((c) => c.labels[LABELS.host] === host)
      .map((c) => c.id),
  );
const settle = () => new Promise((r) => setTimeout(r, 600));

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

test('waves: each host applies and reports the revision once, in its wave; the others keep the base untouched and say nothing; a restart is not repeated', async () => {
  const app = `wv-${suffix()}`;
  const [a, b, c] = ['wa', 'wb', 'wc'].map((h) => `${h}-${suffix()}`) as [string, string, string];
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await results.subscribed;
  const w = { [a]: await startWorker(a, app, rt), [b]: await startWorker(b, app, rt), [c]: await startWorker(c, app, rt) };
  const cfg: AppConfigInput = { docker_image: 'img:1', env_vars: { V: '1' } };
  const r1 = envelope(app, 1, 'create', cfg);
  await publishApp(bus, r1);
  await waitFor('revision 1 everywhere', () => of(results.all, 1).length === 3);

  // Revision 2 restarts the app: in waves [a], [a, b], then for everyone.
  const r2 = envelope(app, 2, 'restart', { ...cfg, env_vars: { V: '2' } });
  const bBefore = idsOf(rt, b);
  const cBefore = idsOf(rt, c);
  let mark = { [b]: rt.of(b).calls.length, [c]: rt.of(c).calls.length };
  await publishApp(bus, wave(r2, 1, [a], r1));
  await results.waitFor(2, 'applied');
  await settle();
  assert.equal(of(results.all, 2), [`${a} applied`], 'only the canary reports');
  assert.equal(touched(rt, b, bBefore, mark[b] ?? 0), [], 'b outside the wave: its containers untouched');
  assert.equal(touched(rt, c, cBefore, mark[c] ?? 0), []);
  assert.equal(w[b]?.applied()[app], { incarnation: 1, revision: 1 }, 'b runs (and heartbeats) the base');

  const aAfter = idsOf(rt, a);
  mark = { [a]: rt.of(a).calls.length, [c]: rt.of(c).calls.length };
  await publishApp(bus, wave(r2, 2, [a, b], r1));
  await waitFor('b applied revision 2', () => of(results.all, 2).length === 2);
  await settle();
  assert.equal(of(results.all, 2), [`${a} applied`, `${b} applied`]);
  assert.equal(touched(rt, a, aAfter, mark[a] ?? 0), [], 'a, in the earlier wave, is not restarted again');
  assert.equal(touched(rt, c, cBefore, mark[c] ?? 0), []);

  mark = { [a]: rt.of(a).calls.length };
  await publishApp(bus, r2); // the last message: no wave, the revision for every host
  await waitFor('c applied revision 2', () => of(results.all, 2).length === 3);
  await settle();
  assert.equal(of(results.all, 2), [`${a} applied`, `${b} applied`, `${c} applied`], 'one result per host, none superseded');
  assert.equal(touched(rt, a, aAfter, mark[a] ?? 0), []);
  assert.equal(running(rt, app), [a, b, c].map((h) => `${h} ${app}-1 2 running`).sort());
  for (const h of [a, b, c]) assert.equal(w[h]?.applied()[app], { incarnation: 1, revision: 2 });
  results.stop();
});

test('a host outside the wave of a newer rollout goes back to its base, quietly; a new app outside its first wave runs nothing yet', async () => {
  const app = `wb-${suffix()}`;
  const [a, b] = ['ba', 'bb'].map((h) => `${h}-${suffix()}`) as [string, string];
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await results.subscribed;
  await startWorker(a, app, rt);
  const wB = await startWorker(b, app, rt);
  const r1 = envelope(app, 1, 'create', { docker_image: 'img:1' });
  await publishApp(bus, wave(r1, 1, [a], null));
  await results.waitFor(1, 'applied');
  await settle();
  assert.equal(running(rt, app), [`${a} ${app}-1 1 running`], 'b: nothing to run yet');
  assert.equal(wB.applied()[app], null);
  await publishApp(bus, r1);
  await waitFor('b applied revision 1', () => of(results.all, 1).length === 2);

  // Revision 2 reaches b in its first wave, then is superseded: revision 3 starts with a, base 1.
  const r2 = envelope(app, 2, 'update', { docker_image: 'img:2' });
  await publishApp(bus, wave(r2, 1, [b], r1));
  await waitFor('b applied revision 2', () => of(results.all, 2).length === 1);
  const r3 = envelope(app, 3, 'update', { docker_image: 'img:3' });
  await publishApp(bus, wave(r3, 1, [a], r1));
  await waitFor('a applied revision 3', () => of(results.all, 3).length === 1);
  await waitFor('b back on revision 1', () => wB.applied()[app]?.revision === 1);
  await settle();
  assert.equal(running(rt, app), [`${a} ${app}-1 3 running`, `${b} ${app}-1 1 running`]);
  assert.equal(of(results.all, 3), [`${a} applied`], 'b says nothing about a rollout it is outside of');
  results.stop();
});

test('a worker that starts mid-rollout: outside the wave it adopts the base, inside the revision; queued earlier waves are acked without a superseded result', async () => {
  const app = `ws-${suffix()}`;
  const [a, b] = ['sa', 'sb'].map((h) => `${h}-${suffix()}`) as [string, string];
  const rt = runtime();
  const results = collectResults(bus.admin, app);
  await results.subscribed;
  const first = [await startWorker(a, app, rt), await startWorker(b, app, rt)];
  const r1 = envelope(app, 1, 'create', { docker_image: 'img:1' });
  await publishApp(bus, r1);
  await waitFor('revision 1 everywhere', () => of(results.all, 1).length === 2);
  for (const w of first) await w.stop();

  // While both are away: revision 2's first two waves (both of them [a]: a rollout of few hosts).
  const r2 = envelope(app, 2, 'update', { docker_image: 'img:2' });
  await publishApp(bus, wave(r2, 1, [a], r1));
  await publishApp(bus, wave(r2, 2, [a], r1));
  const wa = await startWorker(a, app, rt);
  const wb = await startWorker(b, app, rt);
  assert.equal(wa.applied()[app], { incarnation: 1, revision: 2 }, 'a adopted the revision');
  assert.equal(wb.applied()[app], { incarnation: 1, revision: 1 }, 'b adopted the base');
  await waitFor('a reported revision 2', () => of(results.all, 2).length === 1);
  await settle();
  assert.equal(of(results.all, 2), [`${a} applied`], 'once, and never superseded');
  assert.equal(running(rt, app), [`${a} ${app}-1 2 running`, `${b} ${app}-1 1 running`]);
  results.stop();
});

test.run();
