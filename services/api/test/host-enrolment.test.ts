import { JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { connect, jwtAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { consumerName, hostInboxPrefix, keyFingerprint, keyFromSeed, SIGNATURE_HEADER, signMessage, verifyMessage } from '@nebula/bus-auth';
import { createNebulaClient } from '@nebula/client';
import {
  type HostCredential,
  hostCredentialSchema,
  type JoinTokenCreated,
  joinTokenCreatedSchema,
  RENEW_SUBJECT,
  renewSigningBytes,
  streams,
} from '@nebula/contracts';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, http, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * Hosts as principals, against the real PostgreSQL and a secured nats-server: join tokens, a host
 * joining with its own key and using the credential it got on the real server, renewals, revocation
 * (its live connection closed, no reconnect, its consumers gone), the throttle on failed joins.
 */
const test = suite('host enrolment');
let env: TestEnv;
let api: ApiServer;
const conns: NatsConnection[] = [];

async function createToken(body: object = {}): Promise<JoinTokenCreated> {
  const r = await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body });
  assert.is(r.status, 200, r.text);
  return joinTokenCreatedSchema.parse(r.body);
}

function join(body: Record<string, unknown>, base = api.url) {
  return http(base, 'POST', '/api/v2/hosts/join', { body, auth: null });
}

async function joined(token: string, hostId: string, apps: string[], key = createUser()): Promise<{ cred: HostCredential; key: KeyPair }> {
  const r = await join({ token, host_id: hostId, public_key: key.getPublicKey(), apps });
  assert.is(r.status, 200, r.text);
  return { cred: hostCredentialSchema.parse(r.body), key };
}

/** The host's own connection: its JWT and its key, its inbox prefix; no reconnect (a refusal is final). */
async function connectAsHost(cred: HostCredential, key: KeyPair): Promise<NatsConnection> {
  const nc = await connect({
    servers: env.nats.url,
    authenticator: jwtAuthenticator(cred.jwt, key.getSeed()),
    inboxPrefix: hostInboxPrefix(cred.host_id),
    reconnect: false,
    timeout: 2000,
  });
  conns.push(nc);
  return nc;
}

async function refused(p: Promise<unknown>): Promise<boolean> {
  return p.then(
    (nc) => {
      void (nc as NatsConnection).close();
      return false;
    },
    () => true,
  );
}

async function consumerExists(hostId: string, app: string): Promise<boolean> {
  try {
    await (await jetstreamManager(env.nc)).consumers.info(streams.apps.name, consumerName(hostId, app));
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === 10014) return false;
    throw err;
  }
}

function renewBody(hostId: string, apps: string[], key: KeyPair, at = new Date().toISOString()) {
  const req = { host_id: hostId, apps, at };
  return { ...req, signature: signMessage(key, RENEW_SUBJECT, renewSigningBytes(req)) };
}

test.before(async () => {
  env = await startEnv();
  // Failed joins of the other tests all come from 127.0.0.1: this instance lets many through;
  // the throttle has a test (and an instance) of its own.
  api = await env.startApi({ server: { hosts: { maxFailuresPerMinute: 10_000 } } });
});

test.after(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await env?.close();
});

test('join tokens: created (shown once, with the command to run), listed without secrets, deleted', async () => {
  const t = await createToken({ ttl_seconds: 600, uses: 3, apps: ['web', 'db'], description: 'rack 4' });
  const fp = keyFingerprint(keyFromSeed(env.nats.keys.message_signing_seed).getPublicKey());
  assert.match(t.token, new RegExp(`^nebula-join\\.${fp}\\.${t.id}\\.[A-Za-z0-9_-]{43}$`));
  assert.equal([t.uses_left, t.apps, t.description, t.created_by, t.region], [3, ['db', 'web'], 'rack 4', ADMIN.user, null]);
  assert.ok(Math.abs(Date.parse(t.expires_at) - Date.now() - 600_000) < 60_000);
  assert.ok(t.command.includes(`NEBULA_URL=${api.url}`), t.command);
  assert.ok(t.command.includes(`NEBULA_JOIN_TOKEN=${t.token}`));
  assert.ok(t.command.includes('APP_NAME=db,web'));
  // Ready to paste on a host: the worker image with the socket, the machine id, a volume for its credential, NATS.
  for (const part of [
    'docker run -d --restart unless-stopped',
    '-v /var/run/docker.sock:/var/run/docker.sock',
    '-v /etc/machine-id:/etc/machine-id:ro',
    '-v nebula-worker:/var/lib/nebula',
    `-e NEBULA_URL=${api.url}`,
    `-e NATS_URL=${env.nats.url}`,
    `-e NEBULA_JOIN_TOKEN=${t.token}`,
    '-e APP_NAME=db,web',
    'nebula/worker:latest',
  ]) {
    assert.ok(t.docker_command.includes(part), `${part} in ${t.docker_command}`);
  }
  // Only the secret's SHA-256 is stored.
  const row = await env.db.selectFrom('join_tokens').selectAll().where('id', '=', t.id).executeTakeFirstOrThrow();
  const secret = t.token.split('.').at(-1) ?? '';
  assert.not.ok(JSON.stringify(row).includes(secret));
  assert.match(row.secret_hash, /^[0-9a-f]{64}$/);

  const list = await http(api.url, 'GET', '/api/v2/hosts/join_tokens');
  assert.is(list.status, 200);
  assert.not.ok(list.text.includes(secret), 'no secret in the list');
  const listed = (list.body as { join_tokens: Array<{ id: string }> }).join_tokens.find((x) => x.id === t.id);
  assert.ok(listed);
  assert.not.ok('token' in listed);
  // The typed client has the same procedures.
  const client = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  assert.ok((await client.hosts.joinTokens.list.query()).join_tokens.some((x) => x.id === t.id));

  assert.is((await http(api.url, 'DELETE', `/api/v2/hosts/join_tokens/${t.id}`)).status, 200);
  const again = await http(api.url, 'DELETE', `/api/v2/hosts/join_tokens/${t.id}`);
  assert.is(again.status, 404);
  assert.equal((again.body as { join_token_exists: boolean }).join_token_exists, false);
  const gone = await join({ token: t.token, host_id: uniqueName('h'), public_key: createUser().getPublicKey(), apps: ['web'] });
  assert.is(gone.status, 401);
  // Creating, listing and deleting need the admin credential; bad input is a 400.
  assert.is((await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: {}, auth: null })).status, 401);
  assert.is((await http(api.url, 'GET', '/api/v2/hosts/join_tokens', { auth: null })).status, 401);
  assert.is((await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: { ttl_seconds: 1 } })).status, 400);
  assert.is((await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: { apps: ['no spaces'] } })).status, 400);
  // This API has no regions (NATS_REGIONS): any region is unknown, and the answer says so.
  const region = await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: { region: 'eu' } });
  assert.is(region.status, 400, region.text);
  assert.equal((region.body as { regions: string[] }).regions, []);
  assert.match(region.text, /this API has no regions/);
});

test('join: a host with its own key gets a credential that works on the real server, and pulls its signed app messages', async () => {
  const app = uniqueName('web');
  const hostId = uniqueName('h');
  const t = await createToken();
  const { cred, key } = await joined(t.token, hostId, [app]);
  assert.is(cred.host_id, hostId);
  assert.equal(cred.apps, [app]);
  assert.is(cred.region, null, 'a token without a region: the hub');
  assert.is(cred.control_plane_key, keyFromSeed(env.nats.keys.message_signing_seed).getPublicKey());
  assert.ok(Math.abs(Date.parse(cred.expires_at) - Date.now() - 24 * 3_600_000) < 60_000, 'expires in 24 h');
  assert.ok(await consumerExists(hostId, app), 'its consumer was made by the API');
  const row = await env.db.selectFrom('host_credentials').selectAll().where('host_id', '=', hostId).executeTakeFirstOrThrow();
  assert.is(row.public_key, key.getPublicKey());
  assert.is(row.token_id, t.id);

  const nc = await connectAsHost(cred, key);
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${app}`, { body: { docker_image: 'img:1' } })).status, 200);
  const consumer = await jetstream(nc).consumers.get(streams.apps.name, consumerName(hostId, app));
  const m = await consumer.next({ expires: 5000 });
  assert.ok(m, 'the host got its app message');
  assert.is(m.subject, `apps.${app}`);
  assert.ok(verifyMessage(cred.control_plane_key, m.subject, m.data, m.headers?.get(SIGNATURE_HEADER)), 'signed by the control plane key');
  m.ack();
  // The API made APPS with direct gets on: the host reads its app's newest revision that way.
  assert.is((await (await jetstreamManager(env.nc)).streams.info(streams.apps.name)).config.allow_direct, true);
  const newest = await (await jetstreamManager(nc)).direct.getMessage(streams.apps.name, { last_by_subj: `apps.${app}` });
  assert.ok(newest, 'direct get of its own app');
  assert.ok(verifyMessage(cred.control_plane_key, newest.subject, newest.data, newest.header.get(SIGNATURE_HEADER)));
  // Its credential names its own rights only: another host's consumer is not readable.
  const other = await refused(jetstream(nc).consumers.get(streams.apps.name, consumerName('someone-else', app)));
  assert.ok(other);
});

test('a one-time token is refused the second time; two hosts racing for it: exactly one joins', async () => {
  const once = await createToken({ uses: 1 });
  await joined(once.token, uniqueName('h'), ['web']);
  const second = await join({ token: once.token, host_id: uniqueName('h'), public_key: createUser().getPublicKey(), apps: ['web'] });
  assert.is(second.status, 403);
  assert.match((second.body as { message: string }).message, /join token already used/);
  assert.is((second.body as { error: string }).error, 'token used');

  const race = await createToken({ uses: 1 });
  const hosts = [uniqueName('r'), uniqueName('r'), uniqueName('r')];
  const results = await Promise.all(hosts.map((h) => join({ token: race.token, host_id: h, public_key: createUser().getPublicKey(), apps: ['web'] })));
  assert.equal(results.map((r) => r.status).sort(), [200, 403, 403]);
  const rows = await env.db.selectFrom('host_credentials').select('host_id').where('host_id', 'in', hosts).execute();
  assert.is(rows.length, 1);
  const left = await env.db.selectFrom('join_tokens').select('uses_left').where('id', '=', race.id).executeTakeFirstOrThrow();
  assert.is(left.uses_left, 0);

  // A three-use token raced by six hosts: three join; the others get nothing, no consumer left either.
  const three = await createToken({ uses: 3 });
  const six = Array.from({ length: 6 }, () => uniqueName('s'));
  const raced = await Promise.all(six.map((h) => join({ token: three.token, host_id: h, public_key: createUser().getPublicKey(), apps: ['web'] })));
  assert.equal(raced.map((r) => r.status).sort(), [200, 200, 200, 403, 403, 403]);
  for (const [i, h] of six.entries()) assert.is(await consumerExists(h, 'web'), raced[i]?.status === 200, `${h}: a consumer only for a host that joined`);
  const threeLeft = await env.db.selectFrom('join_tokens').select('uses_left').where('id', '=', three.id).executeTakeFirstOrThrow();
  assert.is(threeLeft.uses_left, 0);
});

test('refused joins: expired token, apps outside the token, bad token text, wrong secret, bad body; nothing spent', async () => {
  const t = await createToken({ uses: 5, apps: ['web'] });
  const key = createUser().getPublicKey();
  const outside = await join({ token: t.token, host_id: uniqueName('h'), public_key: key, apps: ['web', 'db', 'cache'] });
  assert.is(outside.status, 403);
  assert.match((outside.body as { message: string }).message, /does not allow the apps cache, db/);
  assert.equal((outside.body as { apps: string[] }).apps, ['cache', 'db']);

  const parts = t.token.split('.');
  const wrongSecret = [...parts.slice(0, 3), 'x'.repeat(43)].join('.');
  const bad = await join({ token: wrongSecret, host_id: uniqueName('h'), public_key: key, apps: ['web'] });
  assert.is(bad.status, 401);
  assert.match((bad.body as { message: string }).message, /unknown join token/);
  const text = await join({ token: 'not-a-token', host_id: uniqueName('h'), public_key: key, apps: ['web'] });
  assert.is(text.status, 401);
  assert.match((text.body as { message: string }).message, /not a join token/);
  const otherPlane = await join({
    token: ['nebula-join', 'f'.repeat(32), ...parts.slice(2)].join('.'),
    host_id: uniqueName('h'),
    public_key: key,
    apps: ['web'],
  });
  assert.is(otherPlane.status, 401);
  assert.match((otherPlane.body as { message: string }).message, /another control plane/);
  const body = await join({ token: t.token, host_id: 'bad host id', public_key: 'not a key', apps: ['web'] });
  assert.is(body.status, 400);
  assert.ok((body.body as { errors: Record<string, string[]> }).errors.public_key);
  assert.is((await http(api.url, 'POST', '/api/v2/hosts/join', { body: '{oops', auth: null })).status, 400);
  // None of these spent a use.
  const left = await env.db.selectFrom('join_tokens').select('uses_left').where('id', '=', t.id).executeTakeFirstOrThrow();
  assert.is(left.uses_left, 5);
  // The apps it allows are fine.
  await joined(t.token, uniqueName('h'), ['web']);

  await env.db
    .updateTable('join_tokens')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('id', '=', t.id)
    .execute();
  const expired = await join({ token: t.token, host_id: uniqueName('h'), public_key: createUser().getPublicKey(), apps: ['web'] });
  assert.is(expired.status, 403);
  assert.match((expired.body as { message: string }).message, /^join token expired at \d{4}-\d\d-\d\dT/);
});

test('renew: signed by the host key gets a new credential; a bad signature, a stale time, an unknown host are refused', async () => {
  const hostId = uniqueName('h');
  const t = await createToken({ apps: ['web', 'db'] });
  const { cred, key } = await joined(t.token, hostId, ['web']);
  const before = await env.db.selectFrom('host_credentials').select('expires_at').where('host_id', '=', hostId).executeTakeFirstOrThrow();
  await new Promise((r) => setTimeout(r, 1100)); // a later `iat`/expiry second
  const r = await http(api.url, 'POST', '/api/v2/hosts/renew', { body: renewBody(hostId, ['web', 'db'], key), auth: null });
  assert.is(r.status, 200, r.text);
  const renewed = hostCredentialSchema.parse(r.body);
  assert.equal(renewed.apps, ['db', 'web']);
  assert.is.not(renewed.jwt, cred.jwt);
  assert.ok(Date.parse(renewed.expires_at) > before.expires_at.getTime());
  assert.ok(await consumerExists(hostId, 'db'), 'the consumer of the added app was made');
  const nc = await connectAsHost(renewed, key);
  assert.ok(await jetstream(nc).consumers.get(streams.apps.name, consumerName(hostId, 'db')));

  const otherKey = createUser();
  const forged = await http(api.url, 'POST', '/api/v2/hosts/renew', { body: renewBody(hostId, ['web'], otherKey), auth: null });
  assert.is(forged.status, 401);
  assert.match((forged.body as { message: string }).message, /not signed by the key/);
  const tampered = { ...renewBody(hostId, ['web'], key), apps: ['web', 'db'] };
  assert.is((await http(api.url, 'POST', '/api/v2/hosts/renew', { body: tampered, auth: null })).status, 401);
  const stale = await http(api.url, 'POST', '/api/v2/hosts/renew', {
    body: renewBody(hostId, ['web'], key, new Date(Date.now() - 25 * 3_600_000).toISOString()),
    auth: null,
  });
  assert.is(stale.status, 400);
  assert.match((stale.body as { message: string }).message, /more than 24 hours/);
  const outside = await http(api.url, 'POST', '/api/v2/hosts/renew', { body: renewBody(hostId, ['web', 'cache'], key), auth: null });
  assert.is(outside.status, 403);
  assert.equal((outside.body as { apps: string[] }).apps, ['cache']);
  const unknown = await http(api.url, 'POST', '/api/v2/hosts/renew', { body: renewBody(uniqueName('nobody'), ['web'], key), auth: null });
  assert.is(unknown.status, 404);
});

test('revoke: the live connection is closed, a reconnect refused, its consumers gone, renewals refused; idempotent', async () => {
  const hostId = uniqueName('h');
  const app = uniqueName('web');
  const t = await createToken();
  const { cred, key } = await joined(t.token, hostId, [app]);
  const nc = await connectAsHost(cred, key);
  const closed = nc.closed();
  const r = await http(api.url, 'POST', `/api/v2/hosts/${hostId}/revoke`);
  assert.is(r.status, 200, r.text);
  assert.is((r.body as { host_id: string }).host_id, hostId);
  const why = await Promise.race([closed.then(() => 'closed'), new Promise((res) => setTimeout(() => res('still open'), 5000))]);
  assert.is(why, 'closed', 'the server closed the host connection');
  assert.ok(await refused(connectAsHost(cred, key)), 'reconnecting is refused');
  assert.not.ok(await consumerExists(hostId, app), 'its consumer is gone');
  const row = await env.db.selectFrom('host_credentials').select('revoked_at').where('host_id', '=', hostId).executeTakeFirstOrThrow();
  assert.ok(row.revoked_at);
  const renew = await http(api.url, 'POST', '/api/v2/hosts/renew', { body: renewBody(hostId, [app], key), auth: null });
  assert.is(renew.status, 403);
  assert.match((renew.body as { message: string }).message, /was revoked at/);
  // Again: same answer, the first revocation time kept.
  const again = await http(api.url, 'POST', `/api/v2/hosts/${hostId}/revoke`);
  assert.is(again.status, 200);
  assert.is((again.body as { revoked_at: string }).revoked_at, (r.body as { revoked_at: string }).revoked_at);
  // The revoked key cannot join again, even with a fresh token; a new key can.
  const t2 = await createToken();
  const sameKey = await join({ token: t2.token, host_id: hostId, public_key: key.getPublicKey(), apps: [app] });
  assert.is(sameKey.status, 403);
  const fresh = await joined(t2.token, hostId, [app]);
  assert.ok(await connectAsHost(fresh.cred, fresh.key));
  assert.is((await http(api.url, 'POST', '/api/v2/hosts/nobody-here/revoke')).status, 404);
  assert.is((await http(api.url, 'POST', `/api/v2/hosts/${hostId}/revoke`, { auth: null })).status, 401);
});

test('a host id joining again with another key: the old key is revoked on the server', async () => {
  const hostId = uniqueName('h');
  const t = await createToken({ uses: 2 });
  const first = await joined(t.token, hostId, ['web']);
  const old = await connectAsHost(first.cred, first.key);
  const closed = old.closed();
  const second = await joined(t.token, hostId, ['web']);
  const why = await Promise.race([closed.then(() => 'closed'), new Promise((res) => setTimeout(() => res('still open'), 5000))]);
  assert.is(why, 'closed');
  assert.ok(await refused(connectAsHost(first.cred, first.key)));
  assert.ok(await connectAsHost(second.cred, second.key));
  const revoked = await env.db.selectFrom('revoked_keys').select('host_id').where('public_key', '=', first.key.getPublicKey()).executeTakeFirst();
  assert.is(revoked?.host_id, hostId);
});

test('a revocation while NATS is down: 503, recorded, pushed once NATS is back (retried), the host refused then', async () => {
  const hostId = uniqueName('h');
  const t = await createToken();
  const { cred, key } = await joined(t.token, hostId, ['web']);
  await env.nats.stop();
  try {
    const r = await http(api.url, 'POST', `/api/v2/hosts/${hostId}/revoke`);
    assert.is(r.status, 503);
    assert.is(r.headers.get('retry-after'), '2');
    assert.match((r.body as { message: string }).message, /revoked in the database but NATS has not applied it yet/);
    const row = await env.db.selectFrom('revoked_keys').select('host_id').where('public_key', '=', key.getPublicKey()).executeTakeFirst();
    assert.is(row?.host_id, hostId, 'the revocation is recorded');
    assert.ok(api.revocations.pending);
  } finally {
    await env.nats.start();
  }
  await waitFor('the revocation list pushed again', async () => !api.revocations.pending, 15_000, 100);
  assert.ok(await refused(connectAsHost(cred, key)), 'the host cannot connect');
});

test('at start the API pushes the revocation list: a revocation recorded by a replica that died before pushing takes effect', async () => {
  const hostId = uniqueName('h');
  const t = await createToken();
  const { cred, key } = await joined(t.token, hostId, ['web']);
  const nc = await connectAsHost(cred, key);
  const closed = nc.closed();
  // As that replica left it: recorded in PostgreSQL, never pushed.
  await env.db.updateTable('host_credentials').set({ revoked_at: new Date() }).where('host_id', '=', hostId).execute();
  await env.db
    .insertInto('revoked_keys')
    .values({ public_key: key.getPublicKey(), host_id: hostId, expires_at: new Date(cred.expires_at) })
    .execute();
  assert.ok(!nc.isClosed());
  await env.startApi();
  const why = await Promise.race([closed.then(() => 'closed'), new Promise((res) => setTimeout(() => res('still open'), 5000))]);
  assert.is(why, 'closed');
  assert.ok(await refused(connectAsHost(cred, key)));
});

test('failed joins are throttled per address: after 10 in a minute, 429 JSON, even for a good token', async () => {
  const throttled = await env.startApi({ server: { hosts: { maxFailuresPerMinute: 10 } } });
  const good = await createToken();
  const attempt = (token: string) => join({ token, host_id: uniqueName('h'), public_key: createUser().getPublicKey(), apps: ['web'] }, throttled.url);
  for (let i = 0; i < 10; i++) assert.is((await attempt(`nebula-join.guess-${i}`)).status, 401);
  const blocked = await attempt(good.token);
  assert.is(blocked.status, 429);
  assert.is((blocked.body as { error: string }).error, 'too many attempts');
  assert.ok(Number(blocked.headers.get('retry-after')) > 0);
  // The token was not looked at, so not spent: another API replica (its own count) takes it.
  const left = await env.db.selectFrom('join_tokens').select('uses_left').where('id', '=', good.id).executeTakeFirstOrThrow();
  assert.is(left.uses_left, 1);
  assert.is((await join({ token: good.token, host_id: uniqueName('h'), public_key: createUser().getPublicKey(), apps: ['web'] })).status, 200);
});

test('the API never logs a join token', async () => {
  // Tokens went through every path above with the test logger; here, a logger that keeps lines.
  const lines: string[] = [];
  const { default: pino } = await import('pino');
  const { Writable } = await import('node:stream');
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const logged = await env.startApi({ server: { log } });
  const t = await createToken();
  await join({ token: t.token, host_id: uniqueName('h'), public_key: createUser().getPublicKey(), apps: ['web'] }, logged.url);
  await join({ token: t.token, host_id: uniqueName('h'), public_key: createUser().getPublicKey(), apps: ['web'] }, logged.url);
  await join({ token: `${t.token}x`, host_id: uniqueName('h'), public_key: createUser().getPublicKey(), apps: ['web'] }, logged.url);
  const secret = t.token.split('.').at(-1) ?? '';
  assert.ok(lines.length > 0);
  assert.not.ok(lines.join('\n').includes(secret), 'no token secret in the log');
  for (const k of [env.nats.keys.account_signing_seed, env.nats.keys.message_signing_seed]) assert.not.ok(lines.join('\n').includes(k), 'no key in the log');
});

test.run();
