import { jetstream } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { keyFromSeed, SIGNATURE_HEADER, signMessage } from '@nebula/bus-auth';
import { streams, subjects } from '@nebula/contracts';
import { sql } from '@nebula/db';
import { type HostCreds, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRollout, drained, heartbeat, registerHostKeys, result, startFleet, suffix } from './fleet.ts';

/**
 * Results and heartbeats the notifier must not believe, through a real nats-server and PostgreSQL.
 * The genuine hosts publish through their own credentials (their own rights), signing as a worker
 * does; what no host may publish (another host's subject) is placed with the admin connection, as
 * anything that gets onto the subject would be.
 */
const fleet = await startFleet();
const { db, jsm } = fleet;
const enc = new TextEncoder();
const connections: NatsConnection[] = [];

async function joinedHost(hostId: string, apps: string[]): Promise<{ creds: HostCreds; nc: NatsConnection }> {
  const creds = await fleet.server.hostCreds(hostId, apps);
  await registerHostKeys(db, [{ hostId, publicKey: creds.publicKey, apps }]); // what the API writes at join
  const nc = await connect(fleet.server.connectOptions(creds));
  connections.push(nc);
  return { creds, nc };
}

/** Publishes `body` on `subject` through `nc` (JetStream), signed with `seed` (none: unsigned). */
function signed(subject: string, body: unknown, seed?: string) {
  const data = enc.encode(JSON.stringify(body));
  const h = headers();
  if (seed) h.set(SIGNATURE_HEADER, signMessage(keyFromSeed(seed), subject, data));
  return { data, headers: h };
}

async function publish(nc: NatsConnection, subject: string, body: unknown, seed?: string): Promise<void> {
  const m = signed(subject, body, seed);
  await jetstream(nc).publish(subject, m.data, { headers: m.headers });
}

/** Each test counts only its own messages: fresh durables read the streams from the start. */
async function emptyStreams(): Promise<void> {
  await jsm.streams.purge(streams.results.name);
  await jsm.streams.purge(streams.hosts.name);
}

const rowOf = (rolloutId: string, host: string) =>
  db.selectFrom('rollout_hosts').selectAll().where('rollout_id', '=', rolloutId).where('host', '=', host).executeTakeFirst();
const fast = (d: string) => ({
  batchSize: 8,
  flushIntervalMs: 20,
  retryDelayMs: 50,
  hostKeysRefreshMs: 200,
  durables: { results: `${d}-r`, heartbeats: `${d}-h` },
});

test('a forged result (signed by another host, or unsigned) is not written and is counted; the genuine one is', async () => {
  const app = `forge-${suffix()}`;
  const [h1, h2] = [`${app}-1`, `${app}-2`];
  await emptyStreams();
  const a = await joinedHost(h1, [app]);
  const b = await joinedHost(h2, [app]);
  const r = await createRollout(db, app, [h1, h2]);
  const n = await fleet.startNotifier(fast(`f-${suffix()}`));
  try {
    await publish(a.nc, subjects.result(app, h1), result(r, h1, 'applied'), a.creds.seed);
    await waitFor('the genuine result written', async () => ((await rowOf(r.id, h1))?.status === 'applied' ? true : undefined));

    // Newer than the genuine one, so any of them that got through would replace it.
    const later = new Date(Date.now() + 60_000);
    await publish(fleet.nc, subjects.result(app, h1), { ...result(r, h1, 'failed', later), error: 'forged: signed by h2' }, b.creds.seed);
    await publish(fleet.nc, subjects.result(app, h1), { ...result(r, h1, 'failed', later), error: 'forged: unsigned' });
    // h2 never reported: a result signed by h1 for h2's subject.
    await publish(fleet.nc, subjects.result(app, h2), result(r, h2, 'applied', later), a.creds.seed);
    // A host nobody registered.
    const ghost = createUser();
    await publish(fleet.nc, subjects.result(app, `${app}-ghost`), result(r, `${app}-ghost`), new TextDecoder().decode(ghost.getSeed()));
    await waitFor('every result handled', () => drained(jsm, 'results', n.options.durables.results));

    const row = await rowOf(r.id, h1);
    assert.is(row?.status, 'applied', `the genuine result stands (found ${row?.status}: ${row?.error})`);
    assert.is(row?.error, null);
    assert.is(await rowOf(r.id, h2), undefined, 'no row for h2');
    assert.is(await rowOf(r.id, `${app}-ghost`), undefined);
    assert.equal(n.stats.results.rejectedBy, { bad_signature: 2, unsigned: 1, unknown_host: 1 });
    assert.is(n.stats.results.written, 1);
    const text = await n.registry.getSingleMetricAsString('nebula_notifier_messages_rejected_total');
    assert.match(text, /nebula_notifier_messages_rejected_total\{stream="results",reason="bad_signature"\} 2/);
    assert.match(text, /reason="unsigned"\} 1/);
  } finally {
    await n.stop();
  }
});

test("a heartbeat for another host's id is dropped", async () => {
  const app = `hb-${suffix()}`;
  const [h1, h2] = [`${app}-1`, `${app}-2`];
  await emptyStreams();
  const a = await joinedHost(h1, [app]);
  await joinedHost(h2, [app]);
  const n = await fleet.startNotifier(fast(`h-${suffix()}`));
  try {
    // h1's credential cannot publish on hosts.h2 (the server refuses it: bus-rules.test.ts); placed there
    // otherwise, h1's signature does not make it h2's.
    await publish(fleet.nc, subjects.heartbeat(h2), heartbeat(h2, [app]), a.creds.seed);
    await publish(a.nc, subjects.heartbeat(h1), heartbeat(h1, [app]), a.creds.seed);
    await waitFor('h1 written', async () => ((await db.selectFrom('hosts').select('id').where('id', '=', h1).executeTakeFirst()) ? true : undefined));
    await waitFor('every heartbeat handled', () => drained(jsm, 'hosts', n.options.durables.heartbeats));
    assert.is(await db.selectFrom('hosts').select('id').where('id', '=', h2).executeTakeFirst(), undefined, 'h2 never heard of');
    assert.equal(n.stats.heartbeats.rejectedBy, { bad_signature: 1 });
  } finally {
    await n.stop();
  }
});

test("a revoked host's results are dropped from the next key refresh on", async () => {
  const app = `rev-${suffix()}`;
  const h = `${app}-1`;
  await emptyStreams();
  const a = await joinedHost(h, [app]);
  const r1 = await createRollout(db, app, [h], 1, 1);
  const n = await fleet.startNotifier(fast(`r-${suffix()}`));
  try {
    await publish(a.nc, subjects.result(app, h), result(r1, h), a.creds.seed);
    await waitFor('accepted before', async () => ((await rowOf(r1.id, h)) ? true : undefined));

    await sql`update host_credentials set revoked_at = now() where host_id = ${h}`.execute(db);
    const q = n.hostKeys.queries.all;
    const t0 = Date.now();
    await waitFor('a refresh begun after the revocation', async () => (n.hostKeys.queries.all >= q + 2 ? true : undefined));
    const tookMs = Date.now() - t0;

    // Still connected (the servers were not told: the notifier's check stands on its own), and signing as before.
    const r2 = await createRollout(db, app, [h], 1, 2);
    await publish(a.nc, subjects.result(app, h), result(r2, h), a.creds.seed);
    await publish(a.nc, subjects.heartbeat(h), heartbeat(h, [app]), a.creds.seed);
    await waitFor('handled', async () =>
      (await drained(jsm, 'results', n.options.durables.results)) && (await drained(jsm, 'hosts', n.options.durables.heartbeats)) ? true : undefined,
    );
    assert.is(await rowOf(r2.id, h), undefined, 'not written after the revocation');
    assert.equal(n.stats.results.rejectedBy, { revoked_host: 1 });
    assert.equal(n.stats.heartbeats.rejectedBy, { revoked_host: 1 });
    console.log(`revocation: keys refreshed ${tookMs} ms after it (HOST_KEYS_REFRESH 200 ms)`);
  } finally {
    await n.stop();
  }
});

test('a JetStream answer landed on results.<app>.<host> by a reply subject (unsigned) is dropped', async () => {
  const app = `reply-${suffix()}`;
  const h = `${app}-1`;
  await emptyStreams();
  const a = await joinedHost(h, [app]);
  const n = await fleet.startNotifier(fast(`p-${suffix()}`));
  try {
    // The host publishes its own heartbeat naming its results subject as the reply: the server's
    // PubAck is stored in RESULTS as if the host had published it.
    const hb = signed(subjects.heartbeat(h), heartbeat(h, [app]), a.creds.seed);
    a.nc.publish(subjects.heartbeat(h), hb.data, { headers: hb.headers, reply: subjects.result(app, h) });
    await a.nc.flush();
    await waitFor('the PubAck dropped', async () => (n.stats.results.rejected > 0 ? true : undefined));
    await waitFor('handled', () => drained(jsm, 'results', n.options.durables.results));
    assert.equal(n.stats.results.rejectedBy, { unsigned: 1 }, 'counted as unsigned');
    assert.is(n.stats.results.written, 0);
    await waitFor('the heartbeat itself written', async () => (n.stats.heartbeats.written === 1 ? true : undefined));
  } finally {
    await n.stop();
  }
});

test.after(async () => {
  for (const c of connections) await c.close().catch(() => undefined);
  await fleet.close();
});

test.run();
