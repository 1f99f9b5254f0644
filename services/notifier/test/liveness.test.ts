import { getHost, getRolloutProgress, listHosts } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRollout, drained, heartbeat, hostIds, publishHeartbeat, publishResult, randomUUID, result, startFleet, suffix } from './fleet.ts';

/**
 * One clock, and two workers under one host id, through a real nats-server, PostgreSQL and notifier:
 * the heartbeats and results are published as workers would (with their own `at`), read back through
 * the queries the API serves.
 */
const fleet = await startFleet();
const { db, js, jsm } = fleet;
const N = 3;
const MIN = 60_000;
const fast = (durable: string) => ({
  batchSize: 8,
  flushIntervalMs: 20,
  retryDelayMs: 50,
  offlineAfterMissed: N,
  durables: { results: `${durable}-r`, heartbeats: `${durable}-h` },
});
const host = (id: string) => getHost(db, id, { offlineAfterMissed: N });

test('workers whose clocks are 10 minutes behind or ahead are online, and their results count', async () => {
  const app = `skew-${suffix()}`;
  const [behind, ahead, right] = hostIds(3, app) as [string, string, string];
  const n = await fleet.startNotifier(fast(`s-${suffix()}`));
  try {
    const now = Date.now();
    await publishHeartbeat(js, heartbeat(behind, [app], new Date(now - 10 * MIN), 1));
    await publishHeartbeat(js, heartbeat(ahead, [app], new Date(now + 10 * MIN), 1));
    await publishHeartbeat(js, heartbeat(right, [app], new Date(now), 1));
    await waitFor('heartbeats written', () => drained(jsm, 'hosts', n.options.durables.heartbeats));
    for (const h of [behind, ahead, right]) {
      const x = (await host(h))!;
      assert.is(x.status, 'online', `${h} online`);
      // last_seen is when the server got it, whatever the worker's clock said.
      assert.ok(Math.abs(Date.parse(x.last_seen) - now) < MIN, `${h} last_seen ${x.last_seen}`);
    }
    // The API takes expected hosts as the online ones: all three, skewed or not.
    const online = await listHosts(db, { offlineAfterMissed: N, app, status: 'online' });
    assert.equal(
      online.hosts.map((h) => h.id),
      [behind, ahead, right],
    );

    const r = await createRollout(db, app, [behind, ahead, right]);
    // The host ahead reports a failure, then its clock is set right (back 10 minutes) and it applies:
    // the later report counts although its `at` is older.
    await publishResult(js, result(r, ahead, 'failed', new Date(now + 10 * MIN)));
    await waitFor('the failure written', async () => ((await getRolloutProgress(db, r.id, { offlineAfterMissed: N }))!.failed === 1 ? true : undefined));
    await publishResult(js, result(r, ahead, 'applied', new Date(now)));
    await publishResult(js, result(r, behind, 'applied', new Date(now - 10 * MIN)));
    await publishResult(js, result(r, right, 'applied', new Date(now)));
    const p = await waitFor('all applied', async () => {
      const x = (await getRolloutProgress(db, r.id, { offlineAfterMissed: N }))!;
      return x.applied === 3 ? x : undefined;
    });
    assert.equal(
      { failed: p.failed, pending: p.pending, offline: p.offline, complete: p.complete, succeeded: p.succeeded },
      { failed: 0, pending: 0, offline: 0, complete: true, succeeded: true },
    );
    for (const h of p.hosts) assert.ok(Math.abs(Date.parse(h.reported_at!) - now) < MIN, `${h.host} reported_at ${h.reported_at} is the server's time`);
  } finally {
    await n.stop();
  }
});

test('a rollout with no expected host is complete but never succeeded; one with an offline host did not succeed', async () => {
  const app = `none-${suffix()}`;
  const empty = await createRollout(db, app, []);
  const p = (await getRolloutProgress(db, empty.id, { offlineAfterMissed: N }))!;
  assert.equal({ expected: p.expected, complete: p.complete, succeeded: p.succeeded }, { expected: 0, complete: true, succeeded: false });

  const [up, gone] = hostIds(2, app) as [string, string];
  const n = await fleet.startNotifier(fast(`z-${suffix()}`));
  try {
    await publishHeartbeat(js, heartbeat(up, [app], new Date(), 5));
    await publishHeartbeat(js, heartbeat(gone, [app], new Date(), 0.1));
    await waitFor('heartbeats written', () => drained(jsm, 'hosts', n.options.durables.heartbeats));
    const r = await createRollout(db, app, [up, gone]);
    await publishResult(js, result(r, up));
    const q = await waitFor('complete without the offline host', async () => {
      const x = (await getRolloutProgress(db, r.id, { offlineAfterMissed: N }))!;
      return x.complete && x.applied === 1 ? x : undefined;
    });
    assert.equal({ offline: q.offline, succeeded: q.succeeded }, { offline: 1, succeeded: false });
  } finally {
    await n.stop();
  }
});

test('a second failure with a new cause replaces the first; the host counts once', async () => {
  const app = `again-${suffix()}`;
  const [h] = hostIds(1, app) as [string];
  const n = await fleet.startNotifier(fast(`f-${suffix()}`));
  try {
    await publishHeartbeat(js, heartbeat(h, [app], new Date(), 5));
    const r = await createRollout(db, app, [h]);
    const progress = () => getRolloutProgress(db, r.id, { offlineAfterMissed: N });
    await publishResult(js, { ...result(r, h, 'failed'), error: 'pull: registry unreachable (retrying)' });
    await waitFor('first failure', async () => ((await progress())!.failures[0]?.error === 'pull: registry unreachable (retrying)' ? true : undefined));
    await publishResult(js, { ...result(r, h, 'failed'), error: 'create: port 8080 taken' });
    const p = await waitFor('second failure', async () => {
      const x = (await progress())!;
      return x.failures[0]?.error === 'create: port 8080 taken' ? x : undefined;
    });
    assert.equal(
      { reported: p.reported, failed: p.failed, failures: p.failures.length, complete: p.complete, succeeded: p.succeeded },
      { reported: 1, failed: 1, failures: 1, complete: true, succeeded: false },
    );
  } finally {
    await n.stop();
  }
});

test('two workers with one host id are flagged; a worker that restarts is not', async () => {
  const app = `dup-${suffix()}`;
  const [twin, restarted, plain] = hostIds(3, app) as [string, string, string];
  const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const n = await fleet.startNotifier(fast(`i-${suffix()}`));
  try {
    // Two processes sending as `twin`, taking turns (some of them in one batch, some across batches).
    for (const inst of [a, b, a, b]) await publishHeartbeat(js, heartbeat(twin, [app], new Date(), 5, inst));
    await waitFor('heartbeats written', () => drained(jsm, 'hosts', n.options.durables.heartbeats));
    await publishHeartbeat(js, heartbeat(twin, [app], new Date(), 5, a));
    // One process, then its successor after a restart; and a host with one process throughout.
    for (const inst of [c, c, d, d]) await publishHeartbeat(js, heartbeat(restarted, [app], new Date(), 5, inst));
    for (let i = 0; i < 3; i++) await publishHeartbeat(js, heartbeat(plain, [app], new Date(), 5, a));
    await waitFor('heartbeats written', () => drained(jsm, 'hosts', n.options.durables.heartbeats));

    const t = (await host(twin))!;
    assert.equal({ status: t.status, duplicate: t.duplicate, instances: t.instances }, { status: 'online', duplicate: true, instances: 2 });
    const r = (await host(restarted))!;
    assert.equal(
      { duplicate: r.duplicate, instances: r.instances },
      { duplicate: false, instances: 2 },
      'the old process is still within the window, but never came back',
    );
    const p = (await host(plain))!;
    assert.equal({ duplicate: p.duplicate, instances: p.instances }, { duplicate: false, instances: 1 });
    const list = await listHosts(db, { offlineAfterMissed: N, app });
    assert.equal(
      list.hosts.map((h) => [h.id, h.duplicate]),
      [
        [twin, true],
        [restarted, false],
        [plain, false],
      ],
    );

    // One of the two stops: the flag lasts one offline window after the last alternation, then clears.
    // (Short intervals from here on, so the window is short: 0.6 s.)
    const cleared = await waitFor('the flag cleared', async () => {
      await publishHeartbeat(js, heartbeat(twin, [app], new Date(), 0.2, a));
      const x = (await host(twin))!;
      return !x.duplicate ? x : undefined;
    });
    assert.equal({ status: cleared.status, instances: cleared.instances }, { status: 'online', instances: 1 });
  } finally {
    await n.stop();
  }
});

test.after(async () => {
  await fleet.close();
});

test.run();
