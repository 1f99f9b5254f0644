import { sql } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { http, startEnv, streamMessages, type TestEnv, uniqueName } from './helpers.ts';

/** The outbox relay: nothing lost while NATS is down, nothing published twice, one relay at a time. */
const test = suite('outbox');
let env: TestEnv;

async function unpublished(): Promise<number> {
  const r = await env.db.selectFrom('outbox').select(env.db.fn.countAll<string>().as('n')).where('published_at', 'is', null).executeTakeFirstOrThrow();
  return Number(r.n);
}

test.before(async () => {
  env = await startEnv();
});
test.after(async () => env.close());

test('a change committed while NATS is down arrives exactly once when NATS is back', async () => {
  const api = await env.startApi();
  const name = uniqueName();
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx:1' } })).status, 200);
  await waitFor('create published', async () => (await streamMessages(env.nc, name)).length === 1);

  await env.nats.stop();
  const other = uniqueName();
  assert.is((await http(api.url, 'PATCH', `/api/v2/apps/${name}/update`, { body: { docker_image: 'nginx:2' } })).status, 202);
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${other}`, { body: { docker_image: 'redis' } })).status, 200);
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}/stop`)).status, 202);
  // Nowhere to publish to: all three wait in the outbox.
  assert.is(await unpublished(), 3);
  const rollout = await env.db.selectFrom('rollouts').select('published_at').where('app', '=', other).executeTakeFirstOrThrow();
  assert.is(rollout.published_at, null);

  await env.nats.start();
  await waitFor('outbox drained', async () => (await unpublished()) === 0, 30_000);
  const msgs = await streamMessages(env.nc, name);
  assert.equal(
    msgs.map((m) => [m.revision, m.action]),
    [
      [1, 'create'],
      [2, 'update'],
      [3, 'stop'],
    ],
  );
  assert.is(msgs[1]!.config.docker_image, 'nginx:2');
  assert.equal(
    (await streamMessages(env.nc, other)).map((m) => m.revision),
    [1],
  );
  const published = await env.db.selectFrom('rollouts').select('published_at').where('app', '=', other).executeTakeFirstOrThrow();
  assert.ok(published.published_at instanceof Date);
  await api.close();
});

test('one relay at a time; when the active replica stops, another takes over', async () => {
  const a = await env.startApi();
  const b = await env.startApi();
  const active = await waitFor('one relay active', () => {
    const states = [a, b].map((x) => x.relay.state);
    return states.filter((s) => s === 'active').length === 1 && states.includes('waiting') ? (a.relay.state === 'active' ? a : b) : undefined;
  });
  const standby = active === a ? b : a;
  const name = uniqueName();
  assert.is((await http(standby.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx' } })).status, 200);
  await waitFor('published by the active relay', async () => (await streamMessages(env.nc, name)).length === 1);
  assert.is(standby.relay.published, 0);

  await active.close();
  assert.is((await http(standby.url, 'POST', `/api/v2/apps/${name}/stop`)).status, 202);
  await waitFor('standby took over', () => standby.relay.state === 'active');
  await waitFor('published by the new relay', async () => (await streamMessages(env.nc, name)).length === 2);
  assert.equal(
    (await streamMessages(env.nc, name)).map((m) => m.revision),
    [1, 2],
  );
  assert.ok(standby.relay.published >= 1);
  await standby.close();
});

test('a row published but not marked (crash between ack and mark) is not stored twice', async () => {
  const api = await env.startApi();
  const name = uniqueName();
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx' } })).status, 200);
  await waitFor('published', async () => (await unpublished()) === 0 && (await streamMessages(env.nc, name)).length === 1);
  // As if the relay died after JetStream's ack: the row is published again.
  await env.db.updateTable('outbox').set({ published_at: null }).where('subject', '=', `apps.${name}`).execute();
  await waitFor('re-published', async () => (await unpublished()) === 0);
  assert.equal(
    (await streamMessages(env.nc, name)).map((m) => m.revision),
    [1],
  );
  await api.close();
});

test('a revision number handed out again after a failover that lost commits is not dropped as a duplicate', async () => {
  const api = await env.startApi();
  const name = uniqueName();
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx:1' } })).status, 200);
  assert.is((await http(api.url, 'PATCH', `/api/v2/apps/${name}/update`, { body: { docker_image: 'nginx:2' } })).status, 202);
  await waitFor('published', async () => (await unpublished()) === 0 && (await streamMessages(env.nc, name)).length === 2);

  // A promoted replica that never saw revision 2 (asynchronous replication): the app is at 1 again.
  const app = await env.db.selectFrom('apps').select('incarnation').where('name', '=', name).executeTakeFirstOrThrow();
  await env.db.deleteFrom('outbox').where('subject', '=', `apps.${name}`).where(sql<number>`(payload->>'revision')::int`, '=', 2).execute();
  await env.db.deleteFrom('rollouts').where('app', '=', name).where('revision', '=', 2).execute();
  await env.db.deleteFrom('app_revisions').where('incarnation', '=', app.incarnation).where('revision', '=', 2).execute();
  await env.db
    .updateTable('apps')
    .set({ revision: 1, config: JSON.stringify({ docker_image: 'nginx:1' }) })
    .where('incarnation', '=', app.incarnation)
    .execute();

  // The next change is revision 2 again, with other content: it must reach the stream.
  assert.is((await http(api.url, 'PATCH', `/api/v2/apps/${name}/update`, { body: { docker_image: 'nginx:3' } })).status, 202);
  await waitFor('published', async () => (await unpublished()) === 0);
  const msgs = await streamMessages(env.nc, name);
  assert.equal(
    msgs.map((m) => [m.revision, m.config.docker_image]),
    [
      [1, 'nginx:1'],
      [2, 'nginx:2'],
      [2, 'nginx:3'],
    ],
  );
  await api.close();
});

test.run();
