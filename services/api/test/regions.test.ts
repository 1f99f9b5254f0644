import { jetstreamManager } from '@nats-io/jetstream';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { connect, jwtAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { consumerName, groupConsumerName, hostInboxPrefix, signMessage } from '@nebula/bus-auth';
import { createNebulaClient } from '@nebula/client';
import {
  type HostCredential,
  hostCredentialSchema,
  hostListSchema,
  hostSchema,
  joinTokenCreatedSchema,
  RENEW_SUBJECT,
  renewSigningBytes,
  rolloutProgressSchema,
  streams,
  sumRegions,
} from '@nebula/contracts';
import { freePort } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, http, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * Regions in the API, against the real PostgreSQL and a secured nats-server: join tokens naming a
 * region (an unknown one is a 400 naming the known ones), the region in a host's credential (kept at
 * renewal), in the host listings and in a rollout's counts per region, and the revocation push that
 * reaches the hub while a region is away.
 *
 * The leaf nodes are not here (they come with the NATS part): the test server plays the hub and
 * region `eu` at once, its JetStream domain being `eu`, so the API's calls in domain `eu`
 * (`$JS.eu.API`) and in the hub's (`$JS.API`) both reach it. That checks that consumers are asked for
 * in the region's domain, not that a leaf node routes them.
 */
const test = suite('regions');
let env: TestEnv;
let api: ApiServer;
let deadPort: number;
const conns: NatsConnection[] = [];

async function token(body: object) {
  const r = await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body });
  assert.is(r.status, 200, r.text);
  return joinTokenCreatedSchema.parse(r.body);
}

async function joined(tokenText: string, hostId: string, apps: string[], key: KeyPair = createUser()): Promise<{ cred: HostCredential; key: KeyPair }> {
  const r = await http(api.url, 'POST', '/api/v2/hosts/join', {
    body: { token: tokenText, host_id: hostId, public_key: key.getPublicKey(), apps },
    auth: null,
  });
  assert.is(r.status, 200, r.text);
  return { cred: hostCredentialSchema.parse(r.body), key };
}

function heartbeatRow(id: string, apps: string[]) {
  return { id, apps, running: '[]', cores: 2, memory_mb: 1024, worker_version: 't', heartbeat_interval_seconds: 10, last_seen: new Date() };
}

test.before(async () => {
  env = await startEnv({ natsConfig: 'jetstream { domain: eu }' });
  deadPort = await freePort();
  api = await env.startApi({ server: { hosts: { regions: [{ name: 'eu', servers: [env.nats.url] }], maxFailuresPerMinute: 10_000 } } });
});

test.after(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await env?.close();
});

test('a token for a region the API does not know is a 400 naming the known ones; a bad name or the hub too', async () => {
  const r = await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: { region: 'mars' } });
  assert.is(r.status, 400, r.text);
  const body = r.body as { error: string; region: string; regions: string[]; errors: { region: string[] } };
  assert.equal([body.error, body.region, body.regions], ['unknown region', 'mars', ['eu']]);
  assert.match(body.errors.region[0] ?? '', /region "mars" is not known: the API's regions \(NATS_REGIONS\) are eu/);
  for (const bad of ['hub', 'EU', 'e.u', 'a'.repeat(32), 7]) {
    const b = await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: { region: bad } });
    assert.is(b.status, 400, `${JSON.stringify(bad)}: ${b.text}`);
  }
  const client = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  try {
    await client.hosts.joinTokens.create.mutate({ region: 'mars' });
    assert.unreachable('created');
  } catch (err) {
    assert.match(String(err), /region "mars" is not known/);
  }
});

test('a token names its region: listed with it; its command names the region servers; no region is the hub', async () => {
  const eu = await token({ region: 'eu', description: 'eu rack' });
  const hub = await token({});
  const hubNull = await token({ region: null });
  assert.equal([eu.region, hub.region, hubNull.region], ['eu', null, null]);
  assert.ok(eu.command.includes(`NATS_URL=${env.nats.url} `), eu.command);
  const listed = await http(api.url, 'GET', '/api/v2/hosts/join_tokens');
  const regions = Object.fromEntries((listed.body as { join_tokens: { id: string; region: string | null }[] }).join_tokens.map((t) => [t.id, t.region]));
  assert.equal([regions[eu.id], regions[hub.id]], ['eu', null]);
});

test("a host that joins with a region's token: its credential, its consumer in the region's domain, the host listings; renewal keeps it", async () => {
  const app = uniqueName();
  const euHost = uniqueName('h-eu');
  const hubHost = uniqueName('h-hub');
  const { cred, key } = await joined((await token({ region: 'eu', apps: [app] })).token, euHost, [app]);
  const { cred: hubCred } = await joined((await token({})).token, hubHost, [app]);
  assert.equal([cred.region, hubCred.region], ['eu', null]);
  const row = await env.db.selectFrom('host_credentials').select('region').where('host_id', '=', euHost).executeTakeFirstOrThrow();
  assert.is(row.region, 'eu');
  const inEu = await jetstreamManager(env.nc, { domain: 'eu', timeout: 5000 });
  assert.ok(await inEu.consumers.info(streams.apps.name, consumerName(euHost, app)), "the consumer, asked for in the region's domain");
  // One that follows a device group: its consumer on GROUPS there too.
  const grouped = uniqueName('h-eu-g');
  const group = uniqueName('lobby');
  const g = await http(api.url, 'POST', '/api/v2/hosts/join', {
    body: { token: (await token({ region: 'eu' })).token, host_id: grouped, public_key: createUser().getPublicKey(), apps: [], device_group: group },
    auth: null,
  });
  assert.is(g.status, 200, g.text);
  assert.is(hostCredentialSchema.parse(g.body).region, 'eu');
  assert.ok(await inEu.consumers.info(streams.groups.name, groupConsumerName(grouped, group)));

  // Its credential works on the servers, its consumer is there to read.
  const nc = await connect({
    servers: env.nats.url,
    authenticator: jwtAuthenticator(cred.jwt, key.getSeed()),
    inboxPrefix: hostInboxPrefix(euHost),
    reconnect: false,
  });
  conns.push(nc);
  await nc.flush();

  await env.db
    .insertInto('hosts')
    .values([heartbeatRow(euHost, [app]), heartbeatRow(hubHost, [app])])
    .execute();
  const one = await http(api.url, 'GET', `/api/v2/hosts/${euHost}`);
  assert.is(one.status, 200, one.text);
  assert.is(hostSchema.parse(one.body).region, 'eu');
  const list = hostListSchema.parse((await http(api.url, 'GET', `/api/v2/hosts?app=${app}`)).body);
  assert.equal(
    list.hosts.map((h) => [h.id, h.region]).sort(),
    [
      [euHost, 'eu'],
      [hubHost, null],
    ].sort(),
  );
  const client = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  assert.is((await client.hosts.get.query({ id: euHost })).region, 'eu');

  const req = { host_id: euHost, apps: [app], at: new Date().toISOString() };
  const renewed = await http(api.url, 'POST', '/api/v2/hosts/renew', {
    body: { ...req, signature: signMessage(key, RENEW_SUBJECT, renewSigningBytes(req)) },
    auth: null,
  });
  assert.is(renewed.status, 200, renewed.text);
  assert.is(hostCredentialSchema.parse(renewed.body).region, 'eu', 'a renewal keeps the region');
});

test('a rollout counts per region (hosts with no credential are the hub): the regions add up to the totals, REST and tRPC', async () => {
  const app = uniqueName();
  const ids = { eu1: uniqueName('eu1'), eu2: uniqueName('eu2'), eu3: uniqueName('eu3'), hub1: uniqueName('hub1'), bare: uniqueName('bare') };
  const euToken = (await token({ region: 'eu', uses: 3 })).token;
  for (const h of [ids.eu1, ids.eu2, ids.eu3]) await joined(euToken, h, [app]);
  await joined((await token({})).token, ids.hub1, [app]);
  // eu3 comes later: it reports without being expected (joined).
  await env.db
    .insertInto('hosts')
    .values([ids.eu1, ids.eu2, ids.hub1, ids.bare].map((h) => heartbeatRow(h, [app])))
    .execute();
  const created = await http(api.url, 'POST', `/api/v2/apps/${app}`, { body: { docker_image: 'nginx' } });
  assert.is(created.status, 200, created.text);
  const rolloutId = (created.body as { rollout_id: string }).rollout_id;
  await env.db
    .insertInto('hosts')
    .values(heartbeatRow(ids.eu3, [app]))
    .execute();
  const result = (host: string, status: 'applied' | 'failed') => ({
    rollout_id: rolloutId,
    host,
    status,
    containers: '[]',
    pull_ms: 0,
    apply_ms: 5,
    reported_at: new Date(),
    ...(status === 'failed' ? { error: 'boom' } : {}),
  });
  await env.db
    .insertInto('rollout_hosts')
    .values([result(ids.eu1, 'applied'), result(ids.eu3, 'applied'), result(ids.hub1, 'failed')])
    .execute();

  const r = await http(api.url, 'GET', `/api/v2/rollouts/${rolloutId}`);
  assert.is(r.status, 200, r.text);
  const p = rolloutProgressSchema.parse(r.body);
  assert.equal(p.regions, {
    hub: { expected: 2, reported: 1, applied: 0, failed: 1, superseded: 0, pending: 1, offline: 0, joined: 0 },
    eu: { expected: 2, reported: 2, applied: 2, failed: 0, superseded: 0, pending: 1, offline: 0, joined: 1 },
  });
  const { expected, reported, applied, failed, superseded, pending, offline, joined: joinedCount } = p;
  assert.equal(sumRegions(p.regions), { expected, reported, applied, failed, superseded, pending, offline, joined: joinedCount });
  const client = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  assert.equal((await client.rollouts.get.query({ id: rolloutId })).regions, p.regions);
});

test('revocation with a region away: the hub still gets the list (the host is cut off), the call answers 503 and the push is retried; a join there is a 503 and spends nothing', async () => {
  const withDead = await env.startApi({
    server: {
      hosts: {
        regions: [
          { name: 'eu', servers: [env.nats.url] },
          { name: 'us', servers: [`nats://127.0.0.1:${deadPort}`] },
        ],
        timeoutMs: 2000,
        revocationRetryMs: 60_000,
      },
    },
  });
  const app = uniqueName();
  // No domain `us` answers: the consumers cannot be made there, so the join fails and keeps nothing
  // (a host of region us joining in the hub's domain instead would pass).
  const usToken = await http(withDead.url, 'POST', '/api/v2/hosts/join_tokens', { body: { region: 'us' } });
  assert.is(usToken.status, 200, usToken.text);
  const usJoin = await http(withDead.url, 'POST', '/api/v2/hosts/join', {
    body: { token: (usToken.body as { token: string }).token, host_id: uniqueName('h-us'), public_key: createUser().getPublicKey(), apps: [app] },
    auth: null,
  });
  assert.is(usJoin.status, 503, usJoin.text);
  assert.match(usJoin.text, /in region us/);
  const usRow = await env.db
    .selectFrom('join_tokens')
    .select('uses_left')
    .where('id', '=', (usToken.body as { id: string }).id)
    .executeTakeFirstOrThrow();
  assert.is(usRow.uses_left, 1, 'the use is not spent');

  const hostId = uniqueName('h-eu');
  const { cred, key } = await joined((await token({ region: 'eu', apps: [app] })).token, hostId, [app]);
  const nc = await connect({
    servers: env.nats.url,
    authenticator: jwtAuthenticator(cred.jwt, key.getSeed()),
    inboxPrefix: hostInboxPrefix(hostId),
    reconnect: false,
  });
  conns.push(nc);
  const closed = nc.closed();

  const r = await http(withDead.url, 'POST', `/api/v2/hosts/${hostId}/revoke`);
  assert.is(r.status, 503, r.text);
  assert.is((r.body as { retryable: boolean }).retryable, true);
  const why = await Promise.race([closed.then(() => 'closed'), new Promise((res) => setTimeout(() => res('still open'), 5000))]);
  assert.is(why, 'closed', 'the hub took the list although region us did not');
  assert.ok(withDead.revocations.pending, 'the push is to be tried again');
  const inEu = await jetstreamManager(env.nc, { domain: 'eu', timeout: 5000 });
  const consumers: string[] = [];
  for await (const c of inEu.consumers.list(streams.apps.name)) consumers.push(c.name);
  assert.not.ok(consumers.includes(consumerName(hostId, app)), "its consumer in the region's domain is gone");
});

test.run();
