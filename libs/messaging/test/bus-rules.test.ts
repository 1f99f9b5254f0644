import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createAccount, createUser } from '@nats-io/nkeys';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import {
  consumerName,
  hostPermissions,
  issueUserCreds,
  keyFromSeed,
  pushAccountRevocations,
  SIGNATURE_HEADER,
  signMessage,
  verifyMessage,
} from '@nebula/bus-auth';
import { streams, subjects } from '@nebula/contracts';
import { startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_HOST_CONSUMER_TUNING, ensureHostConsumers, ensureStreams } from '../src/index.ts';

// Every rule of the bus, against a real nats-server in operator mode. A refused operation either
// rejects or times out (the server answers a permissions violation with an error to the
// connection, not to the request); either way the assertion is on the server's state afterwards.

let nats: TestNatsServer;
let admin: NatsConnection;
const connections: NatsConnection[] = [];

async function asHost(hostId: string, apps: string[]): Promise<NatsConnection> {
  const c = await connect(nats.connectOptions(await nats.hostCreds(hostId, apps)));
  connections.push(c);
  return c;
}

/** Resolves to 'refused' when the call rejects or does not answer within the time. */
async function outcome(p: Promise<unknown>): Promise<'done' | 'refused'> {
  return Promise.race([
    p.then(
      () => 'done' as const,
      () => 'refused' as const,
    ),
    new Promise<'refused'>((r) => setTimeout(() => r('refused'), 1500)),
  ]);
}

const lastSeq = async () => (await (await jetstreamManager(admin)).streams.info(streams.apps.name)).state.last_seq;

test.before(async () => {
  nats = await startNatsServer();
  admin = await connect(nats.connectOptions('admin'));
  const api = await connect(nats.connectOptions('api'));
  const notifier = await connect(nats.connectOptions('notifier'));
  await ensureStreams(await jetstreamManager(api), ['apps']);
  await ensureStreams(await jetstreamManager(notifier), ['results', 'hosts']);
  await ensureHostConsumers(await jetstreamManager(api), 'h1', ['web'], DEFAULT_HOST_CONSUMER_TUNING);
  await ensureHostConsumers(await jetstreamManager(api), 'h2', ['web'], DEFAULT_HOST_CONSUMER_TUNING);
  await jetstream(api).publish(subjects.app('web'), '{"rev":1}');
  await api.close();
  await notifier.close();
});

test.after(async () => {
  for (const c of connections) await c.close().catch(() => undefined);
  await admin.close();
  await nats.cleanup();
});

test('no anonymous connection, and no user of an unknown account', async () => {
  const anonymous = await outcome(connect({ servers: nats.url, reconnect: false, timeout: 1000 }).then((c) => c.close()));
  assert.is(anonymous, 'refused');
  // Signed by an account key the operator never signed: not trusted.
  const rogue = createAccount();
  const stranger = await issueUserCreds(
    { account_public_key: rogue.getPublicKey(), account_signing_seed: new TextDecoder().decode(rogue.getSeed()) },
    { name: 'x', permissions: { pub: { allow: ['>'] }, sub: { allow: ['>'] } } },
  );
  assert.is(
    await outcome(connect({ ...nats.connectOptions({ hostId: 'x', creds: stranger.creds, publicKey: '', seed: '' }), reconnect: false, timeout: 1000 })),
    'refused',
  );
});

test('a host cannot publish an app message', async () => {
  const h1 = await asHost('h1', ['web']);
  const before = await lastSeq();
  assert.is(await outcome(jetstream(h1).publish(subjects.app('x'), '{"evil":true}')), 'refused');
  assert.is(await outcome(jetstream(h1).publish(subjects.app('web'), '{"evil":true}')), 'refused');
  assert.is(await lastSeq(), before, 'nothing was stored in APPS');
});

test('a host cannot purge, delete, create or change a stream, nor create a consumer', async () => {
  const h1 = await asHost('h1', ['web']);
  const jsm = await jetstreamManager(h1);
  assert.is(await outcome(jsm.streams.purge(streams.apps.name)), 'refused');
  assert.is(await outcome(jsm.streams.delete(streams.results.name)), 'refused');
  assert.is(await outcome(jsm.streams.add({ name: 'MINE', subjects: ['mine.>'] })), 'refused');
  assert.is(await outcome(jsm.streams.update(streams.apps.name, { max_msgs: 1 })), 'refused');
  assert.is(await outcome(jsm.consumers.add(streams.apps.name, { durable_name: 'mine', filter_subject: 'apps.>' })), 'refused');
  assert.is(await outcome(jsm.consumers.delete(streams.apps.name, consumerName('h2', 'web'))), 'refused');
  const info = await (await jetstreamManager(admin)).streams.info(streams.apps.name);
  assert.ok(info.state.messages >= 1, 'APPS keeps its messages');
  assert.equal(
    (await (await jetstreamManager(admin)).consumers.info(streams.apps.name, consumerName('h2', 'web'))).name,
    consumerName('h2', 'web'),
    "h2's consumer is still there",
  );
  assert.is(await outcome((await jetstreamManager(admin)).streams.info('MINE')), 'refused', 'no stream MINE');
});

test("a host reads its own consumer, never another host's, nor another app's revision", async () => {
  const h1 = await asHost('h1', ['web']);
  const js = jetstream(h1);
  const own = await js.consumers.get(streams.apps.name, consumerName('h1', 'web'));
  const m = await own.next({ expires: 2000 });
  assert.is(m?.string(), '{"rev":1}');
  m?.ack();
  assert.is(await outcome(js.consumers.get(streams.apps.name, consumerName('h2', 'web')).then((c) => c.next({ expires: 1000 }))), 'refused');
  const jsm = await jetstreamManager(h1);
  assert.is((await jsm.direct.getMessage(streams.apps.name, { last_by_subj: subjects.app('web') }))?.string(), '{"rev":1}');
  assert.is(await outcome(jsm.direct.getMessage(streams.apps.name, { last_by_subj: subjects.app('other') })), 'refused');
  assert.is(
    await outcome(jsm.streams.getMessage(streams.apps.name, { last_by_subj: subjects.app('web') })),
    'refused',
    'no MSG.GET (its subject is in the body)',
  );
});

test('a host publishes only its own results and heartbeat', async () => {
  const h1 = await asHost('h1', ['web']);
  const js = jetstream(h1);
  const jsmAdmin = await jetstreamManager(admin);
  assert.is(await outcome(js.publish(subjects.result('web', 'h1'), '{}')), 'done');
  assert.is(await outcome(js.publish(subjects.heartbeat('h1'), '{}')), 'done');
  const results = (await jsmAdmin.streams.info(streams.results.name)).state.messages;
  const hosts = (await jsmAdmin.streams.info(streams.hosts.name)).state.messages;
  assert.is(await outcome(js.publish(subjects.result('web', 'h2'), '{}')), 'refused');
  assert.is(await outcome(js.publish(subjects.result('other', 'h1'), '{}')), 'refused', 'not for an app it does not serve');
  assert.is(await outcome(js.publish(subjects.heartbeat('h2'), '{}')), 'refused');
  assert.is((await jsmAdmin.streams.info(streams.results.name)).state.messages, results);
  assert.is((await jsmAdmin.streams.info(streams.hosts.name)).state.messages, hosts);
});

test("a reply subject lands the server's answer on apps.x, and that message does not verify", async () => {
  // Why app messages are signed: permissions cannot stop this.
  const h1 = await asHost('h1', ['web']);
  const before = await lastSeq();
  h1.publish(subjects.heartbeat('h1'), '{}', { reply: subjects.app('x') });
  await h1.flush();
  const landed = await waitFor('a message on apps.x', async () => (await lastSeq()) > before || undefined, 5000);
  assert.ok(landed);
  const m = await (await jetstreamManager(admin)).streams.getMessage(streams.apps.name, { last_by_subj: subjects.app('x') });
  assert.ok(m, 'the PubAck was stored on apps.x');
  const sig = m.header?.get(SIGNATURE_HEADER);
  assert.is(verifyMessage(keyFromSeed(nats.keys.message_signing_seed).getPublicKey(), m.subject, m.data, sig), false);
});

test('a signature binds the subject and the body', () => {
  const key = keyFromSeed(nats.keys.message_signing_seed);
  const data = new TextEncoder().encode('{"app":"web"}');
  const sig = signMessage(key, 'apps.web', data);
  assert.ok(verifyMessage(key.getPublicKey(), 'apps.web', data, sig));
  assert.not.ok(verifyMessage(key.getPublicKey(), 'apps.x', data, sig), 'moved to another subject');
  assert.not.ok(verifyMessage(key.getPublicKey(), 'apps.web', new TextEncoder().encode('{"app":"web "}'), sig), 'body changed');
  assert.not.ok(verifyMessage(createUser().getPublicKey(), 'apps.web', data, sig), 'another key');
  assert.not.ok(verifyMessage(key.getPublicKey(), 'apps.web', data, 'not-a-signature'));
  assert.not.ok(verifyMessage(key.getPublicKey(), 'apps.web', data, undefined));
  const h = headers();
  h.set(SIGNATURE_HEADER, sig);
  assert.is(h.get(SIGNATURE_HEADER), sig);
});

test('an expired credential is refused', async () => {
  const expired = await nats.hostCreds('h3', ['web'], { expiresAt: new Date(Date.now() - 60_000) });
  assert.is(await outcome(connect({ ...nats.connectOptions(expired), reconnect: false, timeout: 1000 })), 'refused');
});

test('a revoked host is disconnected at once and cannot connect again', async () => {
  const creds = await nats.hostCreds('h4', ['web']);
  const h4 = await connect({ ...nats.connectOptions(creds), reconnect: false });
  const closed = h4.closed();
  await pushAccountRevocations(nats.keys, { [creds.publicKey]: Math.floor(Date.now() / 1000) + 1 }, { servers: nats.url, timeoutMs: 5000 });
  const why = await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 5000))]);
  assert.is.not(why, 'still open');
  assert.ok(h4.isClosed());
  assert.is(await outcome(connect({ ...nats.connectOptions(creds), reconnect: false, timeout: 1000 })), 'refused');
  // Another host is not touched.
  const h1 = await asHost('h1', ['web']);
  assert.is(await outcome(jetstream(h1).publish(subjects.heartbeat('h1'), '{}')), 'done');
});

test('the permissions name only the host and its apps', () => {
  const p = hostPermissions('h1', ['web', 'db']);
  for (const s of p.pub.allow) assert.ok(!s.includes('>') || s.startsWith('$JS.ACK.'), `no wildcard tail but acks: ${s}`);
  assert.ok(p.pub.allow.every((s) => !s.includes('h2')));
  assert.equal(p.sub.allow, ['_INBOX_h1.>']);
});

test.run();
