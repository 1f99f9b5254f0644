import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { streams, subjects } from '@nebula/contracts';
import { getHost, getRolloutProgress, type RolloutProgressOptions, sql, touchNotifierClock } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createRollout,
  drained,
  heartbeat,
  hostIds,
  publishHeartbeat,
  publishResult,
  publishSigned,
  type RolloutRef,
  result,
  startFleet,
  suffix,
} from './fleet.ts';

const fleet = await startFleet();
const { db, js, jsm } = fleet;
const N = 3;
const progress = (r: RolloutRef, extra: Partial<RolloutProgressOptions> = {}) =>
  getRolloutProgress(db, r.id, { offlineAfterMissed: N, hostsLimit: 1000, ...extra });
const counts = (p: NonNullable<Awaited<ReturnType<typeof progress>>>) => ({
  expected: p.expected,
  reported: p.reported,
  applied: p.applied,
  failed: p.failed,
  superseded: p.superseded,
  pending: p.pending,
  offline: p.offline,
  joined: p.joined,
  complete: p.complete,
});
const fast = (durable: string) => ({ batchSize: 8, flushIntervalMs: 20, retryDelayMs: 50, durables: { results: `${durable}-r`, heartbeats: `${durable}-h` } });

async function heartbeats(hosts: string[], apps: string[], at = new Date(), interval = 5) {
  await Promise.all(hosts.map((h) => publishHeartbeat(js, heartbeat(h, apps, at, interval))));
}

async function waitComplete(r: RolloutRef, applied: number) {
  return waitFor(`rollout ${r.app} complete with ${applied} applied`, async () => {
    const p = await progress(r);
    return p?.complete && p.applied === applied ? p : undefined;
  });
}

// First in the file: the stream holds only this test's messages, so the rows it changes can be counted exactly.
test('results of many workers are counted exactly once under duplicates, naks, unacked redeliveries and failed writes', async () => {
  const app = `web-${suffix()}`;
  const hosts = [...hostIds(40, app), `${app}-flaky`];
  await heartbeats(hosts, [app]);
  const r = await createRollout(db, app, hosts);
  const durable = `a-${suffix()}`;
  const opts = { ...fast(durable), ackWaitMs: 1000 };

  // A write of the flaky host fails twice in PostgreSQL (a sequence is not rolled back with the
  // transaction): once inside its batch, once alone; the third delivery succeeds.
  await sql`create sequence flaky_seq`.execute(db);
  await sql`create function flaky() returns trigger language plpgsql as $$
    begin
      if new.host like '%-flaky' and nextval('flaky_seq') <= 2 then raise exception 'flaky write'; end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger flaky before insert on rollout_hosts for each row execute function flaky()`.execute(db);

  // A foreign client bound to the same durable takes the first messages: naks half, never acks the rest.
  await jsm.consumers.add(streams.results.name, {
    durable_name: opts.durables.results,
    filter_subject: subjects.allResults,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 1_000_000_000,
  });

  const at = new Date();
  for (const h of hosts) await publishResult(js, result(r, h, 'applied', at, 100));
  for (const h of hosts.slice(0, 10)) await publishResult(js, result(r, h, 'applied', at, 100)); // duplicates
  // Signed by their hosts, but invalid: not JSON, a body naming another host than its subject, a bad rollout id.
  await publishSigned(js, subjects.result(app, hosts[0]!), 'not json');
  await publishSigned(js, subjects.result(app, hosts[1]!), JSON.stringify(result(r, hosts[2]!)));
  await publishSigned(js, subjects.result(app, hosts[3]!), JSON.stringify({ ...result(r, hosts[3]!), rollout_id: 'not-a-uuid' }));

  const rogue = await (await js.consumers.get(streams.results.name, opts.durables.results)).fetch({ max_messages: 10, expires: 2000 });
  let taken = 0;
  for await (const m of rogue) {
    if (taken++ % 2 === 0) m.nak();
    if (taken === 10) break;
  }
  assert.is(taken, 10);

  const n = await fleet.startNotifier(opts);
  try {
    const p = await waitComplete(r, hosts.length);
    await waitFor('every result acked', () => drained(jsm, 'results', opts.durables.results));
    assert.equal(counts((await progress(r))!), {
      expected: 41,
      reported: 41,
      applied: 41,
      failed: 0,
      superseded: 0,
      pending: 0,
      offline: 0,
      joined: 0,
      complete: true,
    });
    assert.equal(p.failures, []);
    const rows = await db
      .selectFrom('rollout_hosts')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('rollout_id', '=', r.id)
      .executeTakeFirstOrThrow();
    assert.is(Number(rows.n), 41);
    // 51 valid messages, 41 distinct (rollout, host): duplicates and redeliveries changed nothing.
    assert.is(n.stats.results.rowsChanged, 41);
    assert.ok(n.stats.results.written >= 51, `written ${n.stats.results.written}`);
    assert.is(n.stats.results.rejected, 3);
    assert.equal(n.stats.results.rejectedBy, { invalid: 3 });
    // Every host was registered before the notifier started: one read of every key, none per message.
    assert.is(n.hostKeys.queries.one, 0, 'no query per message');
    assert.ok(n.stats.results.retried >= 1, "the failing write was nak'ed and redelivered");
    assert.is((await progress(r))!.hosts.find((h) => h.host.endsWith('-flaky'))!.state, 'applied');
  } finally {
    await n.stop();
    await sql`drop trigger flaky on rollout_hosts`.execute(db);
  }
});

test('a notifier stopped mid-rollout loses nothing: the next one catches up from the stream', async () => {
  const app = `api-${suffix()}`;
  const hosts = hostIds(300, app);
  await heartbeats(hosts, [app]);
  const r = await createRollout(db, app, hosts);
  const opts = { ...fast(`b-${suffix()}`), batchSize: 20 };

  const first = await fleet.startNotifier(opts);
  const at = new Date();
  await Promise.all(hosts.slice(0, 150).map((h, i) => publishResult(js, result(r, h, 'applied', at, i))));
  await waitFor('some results written', async () => ((await progress(r))!.applied > 0 ? true : undefined));
  await first.stop(); // possibly while batches are still arriving
  assert.is(first.state, 'stopped');

  // While no notifier runs: the rest of the results, and duplicates of earlier ones.
  await Promise.all(hosts.slice(150).map((h, i) => publishResult(js, result(r, h, 'applied', at, 150 + i))));
  await Promise.all(hosts.slice(0, 50).map((h, i) => publishResult(js, result(r, h, 'applied', at, i))));
  const during = (await progress(r))!;
  // Hosts whose heartbeats the first notifier had not written yet count as offline, the others as pending.
  assert.ok(during.reported <= 150 && during.pending + during.offline >= 150, `reported ${during.reported} while stopped`);

  const second = await fleet.startNotifier(opts);
  try {
    const p = await waitComplete(r, 300);
    await waitFor('drained', () => drained(jsm, 'results', opts.durables.results));
    assert.equal(counts(p), { expected: 300, reported: 300, applied: 300, failed: 0, superseded: 0, pending: 0, offline: 0, joined: 0, complete: true });
    assert.equal(p.apply_ms, { p50: 149, p99: 296 });
  } finally {
    await second.stop();
  }
});

test('hosts go offline after missed heartbeats and come back; a heartbeat is dated by the server, not by its at', async () => {
  const app = `edge-${suffix()}`;
  const [h1, h2, h3, h4] = hostIds(4, app) as [string, string, string, string];
  const n = await fleet.startNotifier(fast(`c-${suffix()}`));
  try {
    const now = Date.now();
    await publishHeartbeat(js, heartbeat(h1, [app], new Date(now), 1));
    await publishHeartbeat(js, heartbeat(h2, [app], new Date(now), 0.1)); // silent after it: offline 0.3 s later
    await waitFor('both hosts known', async () =>
      (await getHost(db, h2, { offlineAfterMissed: N })) && (await getHost(db, h1, { offlineAfterMissed: N })) ? true : undefined,
    );
    assert.is((await getHost(db, h1, { offlineAfterMissed: N }))!.status, 'online');
    await waitFor('h2 offline', async () => ((await getHost(db, h2, { offlineAfterMissed: N }))!.status === 'offline' ? true : undefined));
    // Hosts are judged no later than the notifier's last sign of life (plus slack): make it now.
    await touchNotifierClock(db);
    assert.is((await getHost(db, h1, { offlineAfterMissed: N, now: new Date(now + 3_500) }))!.status, 'offline', 'three heartbeats missed');

    const r = await createRollout(db, app, [h1, h2, h3]); // h3 has never been seen
    assert.equal(counts((await progress(r))!), {
      expected: 3,
      reported: 0,
      applied: 0,
      failed: 0,
      superseded: 0,
      pending: 1,
      offline: 2,
      joined: 0,
      complete: false,
    });
    await publishResult(js, result(r, h1));
    await waitFor('h1 applied', async () => ((await progress(r))!.applied === 1 ? true : undefined));
    assert.equal(counts((await progress(r))!), {
      expected: 3,
      reported: 1,
      applied: 1,
      failed: 0,
      superseded: 0,
      pending: 0,
      offline: 2,
      joined: 0,
      complete: true,
    });
    assert.is((await progress(r))!.succeeded, false, 'complete, but two expected hosts did not apply');

    // h2 comes back: the rollout waits for it again.
    await publishHeartbeat(js, heartbeat(h2, [app], new Date(), 1));
    await waitFor('h2 online', async () => ((await getHost(db, h2, { offlineAfterMissed: N }))!.status === 'online' ? true : undefined));
    assert.equal(counts((await progress(r))!), {
      expected: 3,
      reported: 1,
      applied: 1,
      failed: 0,
      superseded: 0,
      pending: 1,
      offline: 1,
      joined: 0,
      complete: false,
    });

    // A heartbeat whose `at` says a minute ago is still a sign of life now: last_seen is the server's time.
    const before = (await getHost(db, h1, { offlineAfterMissed: N }))!.last_seen;
    await publishHeartbeat(js, heartbeat(h1, [app], new Date(now - 60_000), 1));
    await waitFor('heartbeats drained', () => drained(jsm, 'hosts', n.options.durables.heartbeats));
    assert.ok((await getHost(db, h1, { offlineAfterMissed: N }))!.last_seen > before);

    // h2 fails, h3 turns up and applies, h4 (never expected) joins and applies.
    await publishResult(js, result(r, h2, 'failed'));
    for (const h of [h3, h4]) {
      await publishHeartbeat(js, heartbeat(h, [app], new Date(), 1));
      await publishResult(js, result(r, h));
    }
    const p = await waitFor('all reported', async () => {
      const x = (await progress(r))!;
      return x.reported === 4 ? x : undefined;
    });
    assert.equal(counts(p), { expected: 3, reported: 4, applied: 3, failed: 1, superseded: 0, pending: 0, offline: 0, joined: 1, complete: true });
    assert.is(p.succeeded, false, 'applied by 3 hosts, but one of those expected failed');
    assert.equal(
      p.failures.map((f) => [f.host, f.error]),
      [[h2, `failed on ${h2}`]],
    );

    const gauge = await n.registry.getSingleMetricAsString('notifier_hosts');
    assert.match(gauge, /notifier_hosts\{status="online"\} [1-9]/);
  } finally {
    await n.stop();
  }
});

test('a rollout superseded mid-way by a newer revision says so; a newer result replaces an older one', async () => {
  const app = `db-${suffix()}`;
  const hosts = hostIds(10, app);
  await heartbeats(hosts, [app]);
  const n = await fleet.startNotifier(fast(`d-${suffix()}`));
  try {
    // Every host known (and so online) before counting what is pending: results and heartbeats are
    // two consumers, and the results may be written first.
    await waitFor('the 10 hosts written', async () =>
      (await db.selectFrom('hosts').select('id').where('id', 'in', hosts).execute()).length === 10 ? true : undefined,
    );
    const r1 = await createRollout(db, app, hosts, 1, 1);
    const t0 = Date.now();
    for (const h of hosts.slice(0, 4)) await publishResult(js, result(r1, h, 'applied', new Date(t0)));
    await waitFor('4 applied', async () => ((await progress(r1))!.applied === 4 ? true : undefined));
    const mid = (await progress(r1))!;
    assert.equal({ pending: mid.pending, complete: mid.complete, superseded_by: mid.superseded_by }, { pending: 6, complete: false, superseded_by: null });

    const r2 = await createRollout(db, app, hosts, 1, 2);
    for (const h of hosts.slice(4)) await publishResult(js, result(r1, h, 'superseded', new Date(t0 + 1000), 0));
    await publishResult(js, result(r2, hosts[0]!, 'failed', new Date(t0 + 1000)));
    await publishResult(js, result(r2, hosts[0]!, 'applied', new Date(t0 + 2000), 100)); // retried and succeeded
    for (const h of hosts.slice(1)) await publishResult(js, result(r2, h, 'applied', new Date(t0 + 1500), 100));

    await waitComplete(r2, 10);
    await waitFor('drained', () => drained(jsm, 'results', n.options.durables.results));
    const p1 = (await progress(r1))!;
    const p2 = (await progress(r2))!;
    assert.equal(counts(p1), { expected: 10, reported: 10, applied: 4, failed: 0, superseded: 6, pending: 0, offline: 0, joined: 0, complete: true });
    assert.is(p1.superseded_by, r2.id);
    assert.is(p1.succeeded, false, 'superseded on 6 hosts');
    assert.is(p2.succeeded, true);
    assert.equal(counts(p2), { expected: 10, reported: 10, applied: 10, failed: 0, superseded: 0, pending: 0, offline: 0, joined: 0, complete: true });
    assert.is(p2.superseded_by, null);
    assert.equal(p2.failures, []);
  } finally {
    await n.stop();
  }
});

test('two notifiers share the durables: every message of the stream is written by exactly one of them', async () => {
  const app = `shared-${suffix()}`;
  const hosts = hostIds(200, app);
  await heartbeats(hosts, [app]);
  const r = await createRollout(db, app, hosts);
  const opts = { ...fast(`e-${suffix()}`), batchSize: 10, flushIntervalMs: 10 };
  const [a, b] = [await fleet.startNotifier(opts), await fleet.startNotifier(opts)];
  try {
    const at = new Date();
    await Promise.all(hosts.map((h) => publishResult(js, result(r, h, 'applied', at))));
    await Promise.all(hosts.slice(0, 50).map((h) => publishResult(js, result(r, h, 'applied', at))));
    await waitComplete(r, 200);
    await waitFor('drained', () => drained(jsm, 'results', opts.durables.results));
    // Fresh durables read the whole stream, earlier tests' messages included.
    const inStream = (await jsm.streams.info(streams.results.name)).state.messages;
    const handled = [a, b].reduce((s, n) => s + n.stats.results.written + n.stats.results.rejected, 0);
    assert.is(handled, inStream);
    assert.ok(a.stats.results.written > 0 && b.stats.results.written > 0, `split ${a.stats.results.written}/${b.stats.results.written}`);
    assert.equal(counts((await progress(r))!), {
      expected: 200,
      reported: 200,
      applied: 200,
      failed: 0,
      superseded: 0,
      pending: 0,
      offline: 0,
      joined: 0,
      complete: true,
    });
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('a notifier restarted with another ack wait and batch size starts on its durables and updates them', async () => {
  // On NATS 2.10 `consumers.add` is a create: the old upsert made this start fail (consumer already exists).
  const durable = `u-${suffix()}`;
  const first = await fleet.startNotifier(fast(durable));
  await first.stop();
  const opts = { ...fast(durable), ackWaitMs: 5000, batchSize: 100 };
  const second = await fleet.startNotifier(opts);
  try {
    for (const d of [opts.durables.results, opts.durables.heartbeats]) {
      const stream = d === opts.durables.results ? streams.results.name : streams.hosts.name;
      const info = await jsm.consumers.info(stream, d);
      assert.is(info.config.ack_wait, 5000 * 1_000_000, d);
      assert.is(info.config.max_ack_pending, 2000, d); // 20 batches
    }
    const app = `u-${suffix()}`;
    const [h] = hostIds(1, app) as [string];
    await heartbeats([h], [app]);
    const r = await createRollout(db, app, [h]);
    await publishResult(js, result(r, h));
    await waitComplete(r, 1);
  } finally {
    await second.stop();
  }
});

test('a notifier cannot start twice; stop() is idempotent', async () => {
  const n = await fleet.startNotifier(fast(`f-${suffix()}`));
  try {
    await n.start();
    assert.unreachable('second start');
  } catch (err) {
    assert.is((err as Error).name, 'NotifierStateError');
  }
  await Promise.all([n.stop(), n.stop()]);
  assert.is(n.state, 'stopped');
});

test.after(async () => {
  await fleet.close();
});

test('a running notifier that is caught up keeps the notifier clock; a stopped one leaves it standing', async () => {
  const n = await fleet.startNotifier(fast(`k-${suffix()}`));
  const aliveAt = async () => (await db.selectFrom('notifier_clock').select('alive_at').executeTakeFirst())?.alive_at.getTime();
  const first = await waitFor('the notifier clock written', aliveAt);
  await waitFor('the notifier clock advancing', async () => ((await aliveAt())! > first ? true : undefined));
  await n.stop();
  const last = await aliveAt();
  await new Promise((r) => setTimeout(r, 1500));
  assert.is(await aliveAt(), last, 'no tick after stop');
});

test.run();
