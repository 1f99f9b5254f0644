import { createNebulaClient, httpStatusOf, type NebulaClientError, nebulaErrorBody, type RolloutProgress, TRPCClientError, watchRollout } from '@nebula/client';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, startEnv, type TestEnv, TOKEN, uniqueName } from './helpers.ts';

/** The typed client (@nebula/client) against a running API. */
const test = suite('client');
let env: TestEnv;
let api: ApiServer;

test.before(async () => {
  env = await startEnv();
  api = await env.startApi();
});
test.after(async () => env.close());

async function failure(p: Promise<unknown>): Promise<NebulaClientError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, TRPCClientError);
    return err as NebulaClientError;
  }
  throw new Error('expected the call to fail');
}

test('basic auth: the whole app lifecycle, typed', async () => {
  const nebula = createNebulaClient({ url: `${api.url}/`, username: ADMIN.user, password: ADMIN.password });
  assert.equal(await nebula.status.get.query(), { api_available: true });
  const name = uniqueName();
  const created = await nebula.apps.create.mutate({ name, docker_image: 'nginx:1', starting_ports: [8080] });
  assert.is(created.app_id, 1);
  const patched = await nebula.apps.patch.mutate({ name, env_vars: { MODE: 'prod' } });
  assert.equal(patched.env_vars, { MODE: 'prod' });
  assert.is((await nebula.apps.stop.mutate({ name })).running, false);
  assert.is((await nebula.apps.rollback.mutate({ name, revision: 1 })).app_id, 4);
  const history = await nebula.apps.history.query({ name });
  assert.equal(
    history.revisions.map((r) => r.action),
    ['rollback', 'stop', 'update', 'create'],
  );
  const rollout = await nebula.rollouts.get.query({ id: created.rollout_id });
  assert.is(rollout.app, name);
  assert.is(rollout.revision, 1);
  assert.ok((await nebula.apps.list.query()).apps.includes(name));
  await nebula.apps.delete.mutate({ name });
  const gone = await failure(nebula.apps.get.query({ name }));
  assert.is(gone.data?.httpStatus, 403);
  assert.equal(nebulaErrorBody(gone), { app_exists: false });
});

test('bearer token; errors carry the field-by-field body', async () => {
  const nebula = createNebulaClient({ url: api.url, token: TOKEN });
  const err = await failure(nebula.apps.create.mutate({ name: 'bad.name', docker_image: 'nginx', starting_ports: [70000] }));
  assert.is(err.data?.httpStatus, 400);
  const body = nebulaErrorBody(err) as { errors: Record<string, string[]> };
  assert.equal(Object.keys(body.errors).sort(), ['name', 'starting_ports.0']);
});

test('wrong or missing credentials: 401', async () => {
  for (const opts of [{}, { token: 'nope' }, { username: ADMIN.user, password: 'nope' }]) {
    const err = await failure(createNebulaClient({ url: api.url, ...opts }).status.get.query());
    assert.is(httpStatusOf(err), 401);
  }
});

test('rollouts.watch over server-sent events, with either credential: pushes progress, ends when complete', async () => {
  for (const creds of [{ username: ADMIN.user, password: ADMIN.password }, { token: TOKEN }]) {
    const nebula = createNebulaClient({ url: api.url, ...creds });
    const name = uniqueName();
    const hostId = `h-${name}`;
    // A host serving the app, online: the rollout waits for it.
    await env.db
      .insertInto('hosts')
      .values({ id: hostId, apps: [name], running: '[]', cores: 1, memory_mb: 1, worker_version: 't', heartbeat_interval_seconds: 60, last_seen: new Date() })
      .execute();
    const created = await nebula.apps.create.mutate({ name, docker_image: 'nginx' });
    const seen: RolloutProgress[] = [];
    const done = watchRollout(nebula, created.rollout_id, (p) => {
      seen.push(p);
      if (seen.length === 1) {
        void env.db
          .insertInto('rollout_hosts')
          .values({
            rollout_id: created.rollout_id,
            host: hostId,
            status: 'failed',
            error: 'no such image',
            containers: '[]',
            pull_ms: 1,
            apply_ms: 0,
            reported_at: new Date(),
          })
          .execute();
      }
    });
    const last = await done;
    assert.equal(
      seen.map((p) => [p.pending, p.failed, p.complete]),
      [
        [1, 0, false],
        [0, 1, true],
      ],
    );
    assert.equal(
      last.failures.map((f) => [f.host, f.error]),
      [[hostId, 'no such image']],
    );
  }
});

test('rollouts.watch: an unknown rollout or refused credentials end in an error, not a retry loop', async () => {
  const nebula = createNebulaClient({ url: api.url, token: TOKEN });
  const unknown = await failure(watchRollout(nebula, '00000000-0000-4000-8000-000000000000'));
  assert.is(unknown.data?.code, 'FORBIDDEN');
  assert.match(unknown.message, /does not exist/);
  const bad = await failure(watchRollout(nebula, 'not-a-uuid'));
  assert.is(bad.data?.code, 'BAD_REQUEST');
  const refused = await failure(watchRollout(createNebulaClient({ url: api.url, token: 'wrong' }), '00000000-0000-4000-8000-000000000000'));
  assert.match(refused.message, /401/);
});

test.run();
