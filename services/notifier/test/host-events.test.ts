import { randomUUID } from 'node:crypto';
import { headers } from '@nats-io/transport-node';
import { type CronRunReport, type GroupResult, groupSubjects, type PruneReport, streams } from '@nebula/contracts';
import { getRolloutProgress, sql } from '@nebula/db';
import { ensureStream } from '@nebula/messaging';
import { waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listActiveRollouts, loadSnapshot } from '../src/db/rollouts.ts';
import { drained, heartbeat, publishHeartbeat, publishSigned, standInHost, startFleet, suffix } from './fleet.ts';

/**
 * Host events (group results, cron runs, prunes) through a real nats-server, PostgreSQL and
 * notifier: each kind written where its readers look, a repeat changing nothing, and anything not
 * signed by the host its subject names, or speaking of another host, dropped and counted.
 */
const fleet = await startFleet();
const { db, js, jsm } = fleet;
const enc = new TextEncoder();
await ensureStream(jsm, 'events');

/** Each test counts only its own events: a fresh durable reads the stream from the start. */
async function fresh(d: string) {
  await jsm.streams.purge(streams.events.name);
  return fleet.startNotifier(fast(d));
}

const fast = (d: string) => ({
  batchSize: 8,
  flushIntervalMs: 20,
  retryDelayMs: 50,
  hostKeysRefreshMs: 200,
  durables: { results: `${d}-r`, heartbeats: `${d}-h`, events: `${d}-e` },
});

async function eventsDrained(durable: string): Promise<boolean | undefined> {
  const info = await jsm.consumers.info(streams.events.name, durable);
  return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
}

/** Publishes `body` on `subject` signed by `host`'s key (the stand-in host's: registered in host_credentials). */
const publishAs = (host: string, subject: string, body: unknown) => publishSigned(js, subject, JSON.stringify(body), host);

async function publishUnsigned(subject: string, body: unknown): Promise<void> {
  await js.publish(subject, enc.encode(JSON.stringify(body)), { headers: headers() });
}

/** A group rollout as the API writes it: `app` holds the group, `revision` the message's seq. */
async function groupRollout(g: string, expected: string[], seq = 1): Promise<string> {
  const id = randomUUID();
  await db
    .insertInto('rollouts')
    .values({
      id,
      app: g,
      incarnation: '1',
      revision: seq,
      action: 'update',
      expected_hosts: expected,
      published_at: new Date(),
      kind: 'group',
      device_group: g,
    })
    .execute();
  return id;
}

function groupResult(g: string, host: string, rolloutId: string, status: GroupResult['status'] = 'applied'): GroupResult {
  return {
    v: 1,
    device_group: g,
    host,
    incarnation: 1,
    seq: 1,
    device_group_id: 1,
    rollout_id: rolloutId,
    status,
    error: status === 'failed' ? 'web: image not found' : null,
    apps: [{ app: 'web', status: status === 'failed' ? 'failed' : 'applied', error: null }],
    at: new Date().toISOString(),
  };
}

function cronRun(job: string, host: string, cronJobId: number, startedAt: string): CronRunReport {
  const started = Date.parse(startedAt);
  return {
    v: 1,
    job,
    cron_job_id: cronJobId,
    host,
    device_group: 'g',
    container: `${job}-${Math.floor(started / 1000)}`,
    started_at: startedAt,
    finished_at: new Date(started + 2000).toISOString(),
    exit_code: 0,
    timed_out: false,
    log_tail: 'hello\nworld\n',
    error: null,
    at: new Date().toISOString(),
  };
}

function pruneReport(g: string, host: string, pruneId: number, bytes: number): PruneReport {
  return { v: 1, host, device_group: g, prune_id: pruneId, bytes_freed: bytes, images_removed: ['sha256:aaa'], error: null, at: new Date().toISOString() };
}

const hostRow = (rolloutId: string, host: string) =>
  db.selectFrom('rollout_hosts').selectAll().where('rollout_id', '=', rolloutId).where('host', '=', host).executeTakeFirst();

test('group results go into the rollout, host by host; a repeat changes nothing; heartbeats store the device group', async () => {
  const g = `grp-${suffix()}`;
  const [h1, h2, h3] = [`${g}-1`, `${g}-2`, `${g}-3`];
  const n = await fresh(`g-${suffix()}`);
  try {
    for (const h of [h1, h2, h3]) await publishHeartbeat(js, { ...heartbeat(h, []), device_group: g });
    await waitFor('heartbeats written', () => drained(jsm, 'hosts', n.options.durables.heartbeats));
    const groups = await db.selectFrom('hosts').select(['id', 'device_group']).where('id', 'in', [h1, h2, h3]).orderBy('id').execute();
    assert.equal(
      groups.map((r) => r.device_group),
      [g, g, g],
      'hosts.device_group from the heartbeat',
    );

    const rid = await groupRollout(g, [h1, h2, h3]);
    await publishAs(h1, groupSubjects.groupResult(h1, g), groupResult(g, h1, rid));
    await publishAs(h2, groupSubjects.groupResult(h2, g), groupResult(g, h2, rid, 'failed'));
    await waitFor('group results written', () => eventsDrained(n.options.durables.events));
    const row = await hostRow(rid, h1);
    assert.is(row?.status, 'applied');
    assert.equal(row?.containers, []);
    assert.is(row?.image_digest, null);
    assert.is((await hostRow(rid, h2))?.error, 'web: image not found');

    const p = await getRolloutProgress(db, rid, { offlineAfterMissed: 3 });
    assert.ok(p);
    assert.is(p.applied, 1, 'the rollout counts the host that applied it');
    assert.is(p.failed, 1);
    assert.is(p.pending, 1, 'h3 (online, no result yet) is waited for');
    assert.is(p.superseded_by, null);
    assert.equal(
      p.hosts.map((h) => [h.host, h.state]),
      [
        [h1, 'applied'],
        [h2, 'failed'],
        [h3, 'pending'],
      ],
    );

    // The same result again (a worker reporting twice, a redelivery): stored again by JetStream, no news here.
    const changed = n.stats.events.rowsChanged;
    const before = await hostRow(rid, h1);
    await publishAs(h1, groupSubjects.groupResult(h1, g), groupResult(g, h1, rid));
    await waitFor('repeat handled', async () => (n.stats.events.written === 3 ? eventsDrained(n.options.durables.events) : undefined));
    assert.is(n.stats.events.rowsChanged, changed, 'a repeat changes no row');
    assert.equal((await hostRow(rid, h1))?.reported_at, before?.reported_at);

    // A heartbeat without a group: the host follows none any more.
    await publishHeartbeat(js, heartbeat(h3, []));
    await waitFor('h3 left the group', async () =>
      (await db.selectFrom('hosts').select('device_group').where('id', '=', h3).executeTakeFirst())?.device_group === null ? true : undefined,
    );
  } finally {
    await n.stop();
  }
});

test('cron runs go to the incarnation whose cron_job_id range covers them; a repeat is written once; an unknown job is dropped and counted', async () => {
  const job = `job-${suffix()}`;
  const h = `${job}-h`;
  // The first incarnation was updated once (ids 1..2) and deleted; the second started at 3 and is at 4.
  const [old] = await db
    .insertInto('cron_jobs')
    .values({ name: job, cron_job_id: 2, config: '{}', updated_at: new Date(), deleted_at: new Date() })
    .returning('incarnation')
    .execute();
  const [live] = await db
    .insertInto('cron_jobs')
    .values({ name: job, cron_job_id: 4, config: '{}', updated_at: new Date() })
    .returning('incarnation')
    .execute();
  const n = await fresh(`c-${suffix()}`);
  try {
    const r1 = cronRun(job, h, 1, '2026-12-06T10:00:00.000Z');
    const r2 = { ...cronRun(job, h, 3, '2026-12-06T10:01:00.000Z'), exit_code: 137, timed_out: true, log_tail: 'slow\n' };
    const r3 = cronRun(job, h, 9, '2026-12-06T10:02:00.000Z'); // no incarnation ever had id 9
    const r4 = cronRun(`nojob-${suffix()}`, h, 1, '2026-12-06T10:03:00.000Z');
    for (const r of [r1, r2, r3, r4, r2]) await publishAs(h, groupSubjects.cronRun(h, r.job), r);
    await waitFor('runs handled', async () => (n.stats.events.written === 5 ? eventsDrained(n.options.durables.events) : undefined));
    const runs = await db
      .selectFrom('cron_job_runs')
      .select(['incarnation', 'cron_job_id', 'host_id', 'started_at', 'finished_at', 'exit_code', 'timed_out', 'log_tail', 'container', 'error'])
      .where('incarnation', 'in', [old!.incarnation, live!.incarnation])
      .orderBy('started_at')
      .execute();
    assert.equal(
      runs.map((r) => [r.incarnation, r.cron_job_id, r.host_id, r.started_at.toISOString(), r.exit_code, r.timed_out, r.log_tail]),
      [
        [old!.incarnation, 1, h, r1.started_at, 0, false, 'hello\nworld\n'],
        [live!.incarnation, 3, h, r2.started_at, 137, true, 'slow\n'],
      ],
      'one row per run (the repeat of r2 written once), each in its incarnation',
    );
    assert.is(runs[0]?.container, r1.container);
    assert.is(runs[0]?.finished_at?.toISOString(), r1.finished_at);
    assert.equal(n.stats.events.rejectedBy, { unknown_cron_job: 2 });
    assert.equal(n.stats.events.rejectedByKind, { 'cron:unknown_cron_job': 2 });
  } finally {
    await n.stop();
  }
});

test('prunes: one row per host, group and prune_id; a repeat changes nothing; a newer report with another outcome replaces it', async () => {
  const g = `pr-${suffix()}`;
  const [h1, h2] = [`${g}-1`, `${g}-2`];
  const n = await fresh(`p-${suffix()}`);
  try {
    await publishAs(h1, groupSubjects.prune(h1, g), pruneReport(g, h1, 1, 5_000_000_000));
    await publishAs(h2, groupSubjects.prune(h2, g), pruneReport(g, h2, 1, 0));
    await publishAs(h1, groupSubjects.prune(h1, g), pruneReport(g, h1, 1, 5_000_000_000));
    await waitFor('prunes handled', async () => (n.stats.events.written === 3 ? eventsDrained(n.options.durables.events) : undefined));
    assert.is(n.stats.events.rowsChanged, 2);
    const rows = () => db.selectFrom('host_prunes').selectAll().where('device_group', '=', g).orderBy('host').execute();
    assert.equal(
      (await rows()).map((r) => [r.host, r.prune_id, r.bytes_freed, r.images_removed, r.error]),
      [
        [h1, 1, '5000000000', ['sha256:aaa'], null],
        [h2, 1, '0', ['sha256:aaa'], null],
      ],
    );
    await publishAs(h2, groupSubjects.prune(h2, g), { ...pruneReport(g, h2, 1, 0), error: 'engine away' });
    await waitFor('newer report written', async () => ((await rows())[1]?.error === 'engine away' ? true : undefined));
  } finally {
    await n.stop();
  }
});

test("events signed by another host's key, unsigned, naming another host, or for a rollout not of the group are dropped and counted", async () => {
  const g = `fg-${suffix()}`;
  const [h1, h2] = [`${g}-1`, `${g}-2`];
  await standInHost(h1);
  await standInHost(h2);
  const rid = await groupRollout(g, [h1, h2]);
  const appRollout = randomUUID();
  await db
    .insertInto('rollouts')
    .values({ id: appRollout, app: g, incarnation: '1', revision: 1, action: 'update', expected_hosts: [h1], published_at: new Date() })
    .execute();
  const n = await fresh(`f-${suffix()}`);
  try {
    // Each would write a row if believed: h2 never reported anything itself.
    await publishAs(h1, groupSubjects.groupResult(h2, g), groupResult(g, h2, rid)); // h1's key on h2's subject
    await publishUnsigned(groupSubjects.prune(h2, g), pruneReport(g, h2, 7, 1));
    await publishAs(h1, groupSubjects.prune(h1, g), pruneReport(g, h2, 7, 1)); // h1's own subject, h2 in the body
    await publishAs(h1, groupSubjects.groupResult(h1, `${g}x`), groupResult(g, h1, rid)); // another group in the body than the subject's
    await publishAs(h1, groupSubjects.groupResult(h1, g), groupResult(g, h1, appRollout)); // an app's rollout
    await publishAs(h1, `events.${h1}.other.${g}`, pruneReport(g, h1, 7, 1)); // no such kind
    const ghost = `${g}-ghost`;
    await publishUnsigned(groupSubjects.prune(ghost, g), pruneReport(g, ghost, 7, 1));
    // The genuine one, last.
    await publishAs(h1, groupSubjects.groupResult(h1, g), groupResult(g, h1, rid));
    await waitFor('every event handled', async () => (n.stats.events.written >= 2 ? eventsDrained(n.options.durables.events) : undefined));

    assert.is(await hostRow(rid, h2), undefined, 'nothing for h2');
    assert.is(await hostRow(appRollout, h1), undefined, "nothing in the app's rollout");
    assert.is((await hostRow(rid, h1))?.status, 'applied', 'the genuine result written');
    assert.is((await db.selectFrom('host_prunes').select('host').where('device_group', '=', g).execute()).length, 0, 'no prune written');
    assert.equal(n.stats.events.rejectedBy, { bad_signature: 1, unsigned: 1, invalid: 2, unknown_rollout: 1, bad_subject: 1, unknown_host: 1 });
    assert.equal(n.stats.events.rejectedByKind, {
      'group:bad_signature': 1,
      'prune:unsigned': 1,
      'prune:invalid': 1,
      'group:invalid': 1,
      'group:unknown_rollout': 1,
      '?:bad_subject': 1,
      'prune:unknown_host': 1,
    });
    const text = await n.registry.getSingleMetricAsString('nebula_notifier_messages_rejected_total');
    assert.match(text, /nebula_notifier_messages_rejected_total\{stream="events",reason="bad_signature",kind="group"\} 1/);
    assert.match(text, /\{stream="events",reason="invalid",kind="prune"\} 1/);
  } finally {
    await n.stop();
  }
});

test("the rollout controller leaves a device group's rollouts alone", async () => {
  const g = `ctl-${suffix()}`;
  const rid = await groupRollout(g, [`${g}-1`]);
  // As if it had a state and a wave (it never does: a group change goes to every host at once); an app
  // revision with the same incarnation and revision exists, so a missing kind filter would pick it up.
  await sql`update rollouts set state = 'rolling', wave = 1, step = 1, strategy = '{"waves":[100]}'::jsonb where id = ${rid}::uuid`.execute(db);
  await sql`insert into rollout_waves (rollout_id, wave, percent, hosts, counted, started_at) values (${rid}::uuid, 1, 100, ${[`${g}-1`]}, ${[`${g}-1`]}, now())`.execute(
    db,
  );
  const [app] = await db
    .insertInto('apps')
    .values({ name: g, revision: 1, config: '{}', updated_at: new Date(), deleted_at: null })
    .returning('incarnation')
    .execute();
  await sql`update rollouts set incarnation = ${app!.incarnation}::bigint where id = ${rid}::uuid`.execute(db);
  await db
    .insertInto('app_revisions')
    .values({ incarnation: app!.incarnation, revision: 1, action: 'create', config: '{}', actor: null, rollout_id: randomUUID() })
    .execute();
  assert.not.ok((await listActiveRollouts(db)).includes(rid), 'not among the active rollouts');
  assert.is(await loadSnapshot(db, rid), null, 'no snapshot of it');
});

test.after(async () => {
  await fleet.close();
});

test.run();
