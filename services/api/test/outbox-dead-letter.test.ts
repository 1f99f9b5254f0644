import { randomUUID } from 'node:crypto';
import { apiPermissions, issueUserCreds } from '@nebula/bus-auth';
import { appMessageSchema, subjects } from '@nebula/contracts';
import { sql } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { http, startEnv, streamMessages, type TestEnv, TOKEN, uniqueName } from './helpers.ts';

/**
 * Rows that can never be published (no permission on the subject, over max_payload) against a real
 * nats-server configured for it: they are dead-lettered with their error, shown on the app and the
 * rollout, and block neither the other apps nor the app's own later revisions. Changes whose message
 * would be over max_payload are refused before anything is written.
 */
const test = suite('outbox dead letters');
let env: TestEnv;
let deniedCreds: string;
const MAX_PAYLOAD = 8192;
const DENIED = 'denied';

test.before(async () => {
  env = await startEnv({ natsConfig: `max_payload: ${MAX_PAYLOAD}\n` });
  // The API's own rights, but for one subject: its publishes there are a permissions violation.
  const api = apiPermissions();
  const pub = { allow: api.pub.allow, deny: [subjects.app(DENIED)] };
  deniedCreds = (await issueUserCreds(env.nats.keys, { name: 'api', permissions: { pub, sub: api.sub } })).creds;
});
test.after(async () => env.close());

async function row(subject: string, revision: number) {
  return env.db
    .selectFrom('outbox')
    .select(['published_at', 'dead_at', 'error'])
    .where('subject', '=', subject)
    .where(sql<number>`(payload->>'revision')::int`, '=', revision)
    .executeTakeFirstOrThrow();
}

test('a subject without publish permission: its rows are dead-lettered, every other app is published', async () => {
  const api = await env.startApi({ natsCreds: deniedCreds });
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${DENIED}`, { body: { docker_image: 'nginx:1' } })).status, 200);
  const others = [uniqueName(), uniqueName()];
  for (const name of others) assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'redis:1' } })).status, 200);
  assert.is((await http(api.url, 'PATCH', `/api/v2/apps/${DENIED}/update`, { body: { docker_image: 'nginx:2' } })).status, 202);
  assert.is((await http(api.url, 'PATCH', `/api/v2/apps/${others[0]}/update`, { body: { docker_image: 'redis:2' } })).status, 202);

  // Before: the denied app's first row was retried forever and nothing after it went out.
  await waitFor(
    'the other apps published',
    async () => (await streamMessages(env.nc, others[0])).length === 2 && (await streamMessages(env.nc, others[1])).length === 1,
    15_000,
  );
  await waitFor('both revisions of the denied app dead-lettered', async () => (await row(subjects.app(DENIED), 2)).dead_at !== null);
  const first = await row(subjects.app(DENIED), 1);
  assert.ok(first.dead_at instanceof Date);
  assert.match(first.error ?? '', /permissions violation/i);
  assert.equal(await streamMessages(env.nc, DENIED), []);

  // Shown on the app and on its rollouts.
  const got = await http(api.url, 'GET', `/api/v2/apps/${DENIED}`);
  assert.is(got.status, 200);
  const doc = got.body as {
    app_id: number;
    rollout: { publish_error: string | null; complete: boolean };
    publish_errors: Array<{ app_id: number; error: string }>;
  };
  assert.equal(
    doc.publish_errors.map((e) => e.app_id),
    [2, 1],
  );
  assert.match(doc.publish_errors[0]!.error, /permissions violation/i);
  assert.match(doc.rollout.publish_error ?? '', /permissions violation/i);
  assert.is(doc.rollout.complete, true, 'a rollout that can never be published waits for nothing');
  const fine = (await http(api.url, 'GET', `/api/v2/apps/${others[0]}`)).body as {
    rollout: { publish_error: string | null; published_at: string | null };
    publish_errors: unknown[];
  };
  assert.is(fine.rollout.publish_error, null);
  assert.ok(fine.rollout.published_at);
  assert.equal(fine.publish_errors, []);
  assert.is(api.relay.deadLettered, 2);
  await api.close();
});

test("a row over max_payload is dead-lettered; the app's later revision and other apps still go out", async () => {
  const api = await env.startApi({ natsCreds: deniedCreds });
  const name = uniqueName();
  const other = uniqueName();
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx:1' } })).status, 200);
  await waitFor('create published', async () => (await streamMessages(env.nc, name)).length === 1);
  await api.close();

  // As if written while the server allowed more (its max_payload was lowered since): revision 2 too
  // large, then revision 3 and another app's create behind it.
  const big = appMessageSchema.parse({
    v: 1,
    app: name,
    incarnation: 1,
    revision: 2,
    action: 'update',
    config: { docker_image: 'nginx:2', env_vars: { BIG: 'x'.repeat(MAX_PAYLOAD) } },
    rollout_id: randomUUID(),
    created_at: new Date().toISOString(),
  });
  const small = { ...big, revision: 3, config: { ...big.config, env_vars: { SMALL: '1' } }, rollout_id: randomUUID() };
  const otherMsg = { ...small, app: other, revision: 1, action: 'create', rollout_id: randomUUID() };
  await env.db
    .insertInto('outbox')
    .values([big, small, otherMsg].map((m) => ({ subject: subjects.app(m.app), msg_id: m.rollout_id, payload: JSON.stringify(m) })))
    .execute();

  const api2 = await env.startApi();
  await waitFor(
    'revision 3 and the other app published',
    async () => (await streamMessages(env.nc, name)).length === 2 && (await streamMessages(env.nc, other)).length === 1,
    15_000,
  );
  assert.equal(
    (await streamMessages(env.nc, name)).map((m) => m.revision),
    [1, 3],
    'the latest revision wins over the dead letter',
  );
  const dead = await row(subjects.app(name), 2);
  assert.ok(dead.dead_at instanceof Date);
  assert.match(dead.error ?? '', /max payload exceeded/i);
  assert.is(dead.published_at, null);
  await api2.close();
});

test('a change whose message would be over max_payload is refused with 400, and nothing is written', async () => {
  const api = await env.startApi({ natsCreds: deniedCreds });
  const name = uniqueName();
  const huge = { docker_image: 'nginx:1', env_vars: { BIG: 'x'.repeat(MAX_PAYLOAD) } };
  const created = await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: huge });
  assert.is(created.status, 400, created.text);
  const body = created.body as { error: string; message_bytes: number; max_payload_bytes: number };
  assert.is(body.error, 'message too large');
  assert.is(body.max_payload_bytes, MAX_PAYLOAD);
  assert.ok(body.message_bytes > MAX_PAYLOAD, `${body.message_bytes}`);
  assert.is(await env.db.selectFrom('apps').select('name').where('name', '=', name).executeTakeFirst(), undefined);
  assert.is(await env.db.selectFrom('outbox').select('id').where('subject', '=', subjects.app(name)).executeTakeFirst(), undefined);
  assert.is(await env.db.selectFrom('rollouts').select('id').where('app', '=', name).executeTakeFirst(), undefined);

  // A change that grows an existing app over the limit: refused, the app stays at its revision.
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx:1' } })).status, 200);
  const patched = await http(api.url, 'PATCH', `/api/v2/apps/${name}/update`, { body: { env_vars: huge.env_vars } });
  assert.is(patched.status, 400, patched.text);
  assert.match(patched.text, new RegExp(`max_payload of ${MAX_PAYLOAD} bytes`));
  // Through tRPC too (the typed client's path), and the generated REST routes.
  const trpc = await http(api.url, 'POST', '/trpc/apps.update', { body: { name, ...huge } });
  assert.is(trpc.status, 400, trpc.text);
  const app = (await http(api.url, 'GET', `/api/v2/apps/${name}`)).body as { app_id: number };
  assert.is(app.app_id, 1);
  const outbox = await env.db.selectFrom('outbox').select('id').where('subject', '=', subjects.app(name)).execute();
  assert.is(outbox.length, 1);
  await api.close();
});

test('the age of the oldest unpublished row is on /metrics, and 0 once published', async () => {
  const api = await env.startApi({ natsCreds: deniedCreds });
  const metric = async () => {
    const text = await (await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const m = /^nebula_outbox_oldest_unpublished_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text);
    assert.ok(m, 'the gauge is exported');
    return Number(m[1]);
  };
  await waitFor('nothing waiting', async () => (await metric()) === 0);
  await env.nats.stop();
  const name = uniqueName();
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx:1' } })).status, 200);
  // Written a while ago (rather than waiting that long here).
  await env.db
    .updateTable('outbox')
    .set({ created_at: new Date(Date.now() - 120_000) })
    .where('subject', '=', subjects.app(name))
    .execute();
  const age = await metric();
  assert.ok(age >= 120 && age < 600, `age ${age}`);
  await env.nats.start();
  await waitFor('published', async () => (await metric()) === 0, 20_000);
  assert.is((await streamMessages(env.nc, name)).length, 1);
  await api.close();
});

test.run();
