import { jetstreamManager } from '@nats-io/jetstream';
import { keyFromSeed, SIGNATURE_HEADER, verifyMessage } from '@nebula/bus-auth';
import { type GroupMessage, groupMessageSchema, groupSubjects, streams } from '@nebula/contracts';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { http, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * The GROUPS stream lost while the API runs (real nats-server and PostgreSQL): the newest message of
 * every live device group is put back, signed, with its seq and rollout id (hosts that applied it see
 * nothing new; a host that starts reads it); a deleted group stays gone; with the outbox rows pruned
 * by retention the message is rebuilt from the group's row.
 */
const test = suite('GROUPS stream lost');
let env: TestEnv;
let api: ApiServer;
const STREAM_CHECK_MS = 300;
const [app, job, live, deleted] = [uniqueName('app'), uniqueName('job'), uniqueName('g'), uniqueName('g')];

/** The newest message on the group's subject, checked to be the control plane's; null when there is none. */
async function newest(group: string): Promise<GroupMessage | null> {
  const jsm = await jetstreamManager(env.nc);
  const m = await jsm.direct.getMessage(streams.groups.name, { last_by_subj: groupSubjects.group(group) }).catch(() => null);
  if (!m) return null;
  const key = keyFromSeed(env.nats.keys.message_signing_seed).getPublicKey();
  assert.ok(verifyMessage(key, m.subject, m.data, m.header?.get(SIGNATURE_HEADER)), 'signed by the control plane');
  return groupMessageSchema.parse(m.json());
}

let before: GroupMessage;

test.before(async () => {
  env = await startEnv();
  api = await env.startApi({ relay: { streamCheckMs: STREAM_CHECK_MS } });
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${app}`, { body: { docker_image: 'img:1' } })).status, 200);
  assert.is((await http(api.url, 'POST', `/api/v2/cron_jobs/${job}`, { body: { docker_image: 'busybox', schedule: '*/5 * * * *' } })).status, 200);
  assert.is((await http(api.url, 'POST', `/api/v2/device_groups/${live}`, { body: { apps: [app] } })).status, 200);
  assert.is((await http(api.url, 'PUT', `/api/v2/device_groups/${live}/update`, { body: { cron_jobs: [job] } })).status, 202);
  assert.is((await http(api.url, 'POST', `/api/v2/device_groups/${deleted}`, { body: { apps: [app] } })).status, 200);
  assert.is((await http(api.url, 'DELETE', `/api/v2/device_groups/${deleted}`)).status, 200);
  before = await waitFor('the group messages published', async () => {
    const [l, d] = [await newest(live), await newest(deleted)];
    return l?.seq === 2 && d?.deleted === true ? l : undefined;
  });
});
test.after(async () => env?.close());

test("GROUPS deleted: each live group's newest message is back as it went out; a deleted group's is not", async () => {
  const jsm = await jetstreamManager(env.nc);
  await jsm.streams.delete(streams.groups.name);
  const back = await waitFor('the live group back in GROUPS', async () => (await newest(live)) ?? undefined, 15_000);
  assert.equal(back, before);
  assert.is(await newest(deleted), null);
  assert.equal(
    back.cron_jobs.map((j) => j.name),
    [job],
  );
});

test('GROUPS purged with the outbox rows pruned: the message is rebuilt from the group (same seq, ids and rollout), once', async () => {
  await env.db.deleteFrom('outbox').where('subject', '=', groupSubjects.group(live)).execute();
  const jsm = await jetstreamManager(env.nc);
  await jsm.streams.purge(streams.groups.name);
  const back = await waitFor('the live group back in GROUPS', async () => (await newest(live)) ?? undefined, 15_000);
  const { created_at: _c, actor: _a, ...kept } = before;
  const { created_at: _c2, actor: _a2, ...rebuilt } = back;
  assert.equal(rebuilt, kept);
  const count = async () => (await jsm.streams.info(streams.groups.name)).state.messages;
  const n = await count();
  const checks = api.relay.streamChecks;
  await waitFor('two more checks of the stream', () => api.relay.streamChecks >= checks + 2);
  assert.is(await count(), n, 'nothing more added while the stream holds it');
});

test.run();
