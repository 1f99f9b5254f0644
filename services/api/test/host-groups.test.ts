import { JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { connect, jwtAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { groupConsumerName, hostInboxPrefix, signMessage } from '@nebula/bus-auth';
import { groupMessageSchema, type HostCredential, hostCredentialSchema, RENEW_SUBJECT, renewSigningBytes, streams } from '@nebula/contracts';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { http, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * Hosts that follow a device group, against the real PostgreSQL and a secured nats-server: the join
 * and the renewal with `device_group` make its consumer on GROUPS (a group that does not exist yet
 * included), the credential's rights cover it (the host really reads its group with them), a change
 * of group drops the old consumer, leaving the group drops it too, a revocation deletes it.
 */
const test = suite('host groups');
let env: TestEnv;
let api: ApiServer;
const conns: NatsConnection[] = [];

async function groupConsumerExists(hostId: string, group: string): Promise<boolean> {
  try {
    await (await jetstreamManager(env.nc)).consumers.info(streams.groups.name, groupConsumerName(hostId, group));
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === 10014) return false;
    throw err;
  }
}

/** The NATS rights the credential's JWT carries. */
function rightsOf(cred: HostCredential): string[] {
  const payload = JSON.parse(Buffer.from(cred.jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { nats: { pub: { allow: string[] } } };
  return payload.nats.pub.allow;
}

function renewBody(hostId: string, apps: string[], key: KeyPair, deviceGroup?: string) {
  const req = { host_id: hostId, apps, at: new Date().toISOString(), ...(deviceGroup === undefined ? {} : { device_group: deviceGroup }) };
  return { ...req, signature: signMessage(key, RENEW_SUBJECT, renewSigningBytes(req)) };
}

async function renew(hostId: string, apps: string[], key: KeyPair, deviceGroup?: string) {
  return http(api.url, 'POST', '/api/v2/hosts/renew', { body: renewBody(hostId, apps, key, deviceGroup), auth: null });
}

test.before(async () => {
  env = await startEnv();
  api = await env.startApi({ server: { hosts: { maxFailuresPerMinute: 10_000 } } });
});

test.after(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await env?.close();
});

test('join and renew with a group: its consumer on GROUPS, rights for it, the old one dropped on a change, gone when leaving and at revocation', async () => {
  const web = uniqueName('web');
  const [g1, g2] = [uniqueName('g'), uniqueName('g')];
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${web}`, { body: { docker_image: 'nginx' } })).status, 200);
  const token = await http(api.url, 'POST', '/api/v2/hosts/join_tokens', { body: { uses: 1, apps: [web] } });
  const hostId = uniqueName('host');
  const key = createUser();
  // The group does not exist yet: fine, the consumer waits for its first message.
  const j = await http(api.url, 'POST', '/api/v2/hosts/join', {
    body: { token: (token.body as { token: string }).token, host_id: hostId, public_key: key.getPublicKey(), apps: [web], device_group: g1 },
    auth: null,
  });
  assert.is(j.status, 200, j.text);
  const cred = hostCredentialSchema.parse(j.body);
  assert.is(cred.device_group, g1);
  assert.ok(await groupConsumerExists(hostId, g1));
  assert.ok(rightsOf(cred).includes(`$JS.API.CONSUMER.MSG.NEXT.${streams.groups.name}.${groupConsumerName(hostId, g1)}`));
  assert.ok(rightsOf(cred).includes(`events.${hostId}.>`));

  // The rights work on the real server: the host reads its group's newest message once there is one.
  assert.is((await http(api.url, 'POST', `/api/v2/device_groups/${g1}`, { body: { apps: [web] } })).status, 200);
  const nc = await connect({
    servers: env.nats.url,
    authenticator: jwtAuthenticator(cred.jwt, key.getSeed()),
    inboxPrefix: hostInboxPrefix(hostId),
    reconnect: false,
    timeout: 2000,
  });
  conns.push(nc);
  const jsm = await jetstreamManager(nc);
  await waitFor(
    'the host reads its group',
    async () => {
      const m = await jsm.direct.getMessage(streams.groups.name, { last_by_subj: `groups.${g1}` }).catch(() => null);
      return m !== null && groupMessageSchema.parse(m.json()).apps.includes(web);
    },
    10_000,
    100,
  );
  const info = await jsm.consumers.info(streams.groups.name, groupConsumerName(hostId, g1));
  assert.is(info.config.filter_subject, `groups.${g1}`);
  // ...and not another group's.
  const other = await jsm.direct.getMessage(streams.groups.name, { last_by_subj: `groups.${g2}` }).then(
    () => 'read',
    () => 'refused',
  );
  assert.is(other, 'refused');

  // Another group: the new consumer made, the old one dropped, the rights follow.
  const moved = await renew(hostId, [web], key, g2);
  assert.is(moved.status, 200, moved.text);
  const c2 = hostCredentialSchema.parse(moved.body);
  assert.is(c2.device_group, g2);
  assert.ok(await groupConsumerExists(hostId, g2));
  assert.not.ok(await groupConsumerExists(hostId, g1));
  assert.ok(rightsOf(c2).some((r) => r.includes(groupConsumerName(hostId, g2))));
  assert.not.ok(rightsOf(c2).some((r) => r.includes(groupConsumerName(hostId, g1))));
  const row = await env.db.selectFrom('host_credentials').select('device_group').where('host_id', '=', hostId).executeTakeFirstOrThrow();
  assert.is(row.device_group, g2);

  // The join token's app restriction still holds at renewal, group or not.
  const outside = await renew(hostId, [web, uniqueName('cache')], key, g2);
  assert.is(outside.status, 403);
  assert.is((outside.body as { error: string }).error, 'apps not allowed');

  // Leaving the group (a worker started without DEVICE_GROUP): no group, no consumer, no rights.
  const left = await renew(hostId, [web], key);
  assert.is(left.status, 200, left.text);
  const c3 = hostCredentialSchema.parse(left.body);
  assert.is(c3.device_group, null);
  assert.not.ok(await groupConsumerExists(hostId, g2));
  assert.not.ok(rightsOf(c3).some((r) => r.includes('GROUPS.g_')));

  // Back in g1, then revoked: the group consumer goes with the rest.
  assert.is((await renew(hostId, [web], key, g1)).status, 200);
  assert.ok(await groupConsumerExists(hostId, g1));
  const revoked = await http(api.url, 'POST', `/api/v2/hosts/${hostId}/revoke`);
  assert.is(revoked.status, 200, revoked.text);
  assert.not.ok(await groupConsumerExists(hostId, g1));
});

test.run();
