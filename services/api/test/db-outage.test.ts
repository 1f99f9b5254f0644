import type { IncomingMessage, ServerResponse } from 'node:http';
import { createNebulaClient, httpStatusOf, nebulaErrorBody, watchRollout } from '@nebula/client';
import { createDb, type Database, type Kysely } from '@nebula/db';
import { type BlackHoleProxy, startBlackHoleProxy, waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, basicHeader, http, spawnApi, startEnv, type TestEnv, TOKEN, uniqueName } from './helpers.ts';

/**
 * A black-holed PostgreSQL: the API's pool goes through a TCP proxy in front of the real server;
 * frozen, the proxy accepts connections and forwards no byte (as behind a dead link). Calls must
 * end as 503 with a JSON body once a deadline passes, on tRPC and REST alike, and the API must serve
 * again once PostgreSQL answers. The outbox relay keeps its own session on the real server.
 */
const test = suite('db-outage');
let env: TestEnv;
let proxy: BlackHoleProxy;
let db: Kysely<Database>;
let api: ApiServer;
const app = uniqueName('outage');
// Short deadlines, so each stall ends within about a second.
const TIMEOUTS = { connectTimeoutMs: 700, statementTimeoutMs: 500, queryTimeoutMs: 900, idleInTransactionTimeoutMs: 2000, keepAliveMs: 1000, maxWaiting: 4 };

test.before(async () => {
  env = await startEnv();
  const u = new URL(env.dbUrl);
  proxy = await startBlackHoleProxy(u.hostname, Number(u.port || 5432));
  db = createDb(proxy.url(env.dbUrl), 3, TIMEOUTS);
  api = await env.startApi({ db });
  await http(api.url, 'POST', `/api/v2/apps/${app}`, { body: { docker_image: 'nginx:1.27' } });
});

test.after(async () => {
  proxy?.thaw();
  await env?.close();
  await db?.destroy().catch(() => undefined);
  await proxy?.close();
});

test.after.each(() => {
  proxy.thaw();
});

test('frozen PostgreSQL: REST (original and generated routes) and tRPC answer 503 JSON, then serve again when it answers', async () => {
  const nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  assert.is((await http(api.url, 'GET', '/api/v2/apps')).status, 200);
  proxy.freeze();

  const list = await http(api.url, 'GET', '/api/v2/apps');
  assert.is(list.status, 503, list.text);
  assert.is((list.body as { retryable?: unknown }).retryable, true);
  assert.match(String((list.body as { reason?: unknown }).reason), /^database /);
  assert.is(list.headers.get('retry-after'), '2');

  const history = await http(api.url, 'GET', `/api/v2/apps/${app}/history`);
  assert.is(history.status, 503, history.text);

  const created = await http(api.url, 'POST', `/api/v2/apps/${uniqueName('new')}`, { body: { docker_image: 'nginx:1.27' } });
  assert.is(created.status, 503, created.text);

  const trpc = await http(api.url, 'GET', `/trpc/apps.get?input=${encodeURIComponent(JSON.stringify({ name: app }))}`);
  assert.is(trpc.status, 503, trpc.text);
  assert.is((trpc.body as { error?: { data?: { code?: string } } }).error?.data?.code, 'SERVICE_UNAVAILABLE');

  const err = await nebula.apps.list.query().then(
    () => null,
    (e: unknown) => e,
  );
  assert.is(httpStatusOf(err), 503);
  assert.is(nebulaErrorBody(err)?.retryable, true);

  // Many calls at once while frozen: each ends (the pool's waiters are bounded), none hangs.
  const burst = await Promise.all(Array.from({ length: 12 }, () => http(api.url, 'GET', '/api/v2/apps').then((r) => r.status)));
  assert.ok(
    burst.every((s) => s === 503),
    `all 503: ${burst.join(',')}`,
  );

  const health = await fetch(`${api.url}/health`);
  assert.is(health.status, 503);
  await health.body?.cancel();

  proxy.thaw();
  await waitFor('the API serves again', async () => (await http(api.url, 'GET', '/api/v2/apps')).status === 200, 10_000, 100);
  const again = await http(api.url, 'GET', `/api/v2/apps/${app}/history`);
  assert.is(again.status, 200);
  const made = await http(api.url, 'POST', `/api/v2/apps/${uniqueName('after')}`, { body: { docker_image: 'nginx:1.27' } });
  assert.is(made.status, 200, made.text);
});

test('watches while PostgreSQL stops answering: each stream ends with a 503 error event (the client retries), and the watch completes once it answers', async () => {
  const name = uniqueName('watched');
  const hostId = `h-${name}`;
  await env.db
    .insertInto('hosts')
    .values({ id: hostId, apps: [name], running: '[]', cores: 1, memory_mb: 1, worker_version: 't', heartbeat_interval_seconds: 60, last_seen: new Date() })
    .execute();
  const created = await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx' } });
  const id = (created.body as { rollout_id: string }).rollout_id;
  let ended = 0;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/trpc/rollouts.watch')) res.once('close', () => ended++);
  };
  api.server.on('request', onRequest);
  try {
    const nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
    let pushed = 0;
    const done = watchRollout(nebula, id, () => {
      if (++pushed === 1) proxy.freeze();
    });
    done.catch(() => undefined); // awaited below; a rejection before then must fail the test, not the process
    // Each stream the client opens while frozen is ended by the server once the query deadline passes.
    await waitFor('two watch streams ended while frozen', async () => ended >= 2, 20_000, 50);

    const raw = await fetch(`${api.url}/trpc/rollouts.watch?input=${encodeURIComponent(JSON.stringify({ id }))}`, {
      headers: { authorization: basicHeader() },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await raw.text();
    assert.match(text, /event: serialized-error/);
    assert.match(text, /"code":"SERVICE_UNAVAILABLE"/);

    proxy.thaw();
    await env.db
      .insertInto('rollout_hosts')
      .values({ rollout_id: id, host: hostId, status: 'applied', containers: '[]', pull_ms: 1, apply_ms: 1, reported_at: new Date() })
      .execute();
    const last = await done;
    assert.is(last.complete, true);
  } finally {
    api.server.off('request', onRequest);
  }
});

test('a statement the server cancels for running too long: 503, and the connection serves the next call', async () => {
  // The statement timeout is the server's: a long lock wait is the realistic case. Hold the app's row.
  const holder = createDb(env.dbUrl, 1);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const lockTaken = new Promise<void>((r) => (locked = r));
  const running = holder.connection().execute(async (c) => {
    await c.transaction().execute(async (t) => {
      await t.selectFrom('apps').select('incarnation').where('name', '=', app).forUpdate().execute();
      locked();
      await held;
    });
  });
  try {
    await lockTaken;
    const stop = await http(api.url, 'POST', `/api/v2/apps/${app}/stop`);
    assert.is(stop.status, 503, stop.text);
    assert.match(String((stop.body as { reason?: unknown }).reason), /statement-timeout/);
  } finally {
    // A failed assertion must not leave the lock held (the cleanup would wait on it).
    release();
    await running;
    await holder.destroy();
  }
  assert.is((await http(api.url, 'POST', `/api/v2/apps/${app}/stop`)).status, 202);
});

test('the API process takes its deadlines from DB_* variables: 503 while frozen, 200 after, and a wrong value refuses to start', async () => {
  const vars = {
    DATABASE_URL: proxy.url(env.dbUrl),
    ...env.busVars,
    AUTH_TOKEN: TOKEN,
    LOG_LEVEL: 'warn',
    DB_CONNECT_TIMEOUT_MS: '700',
    DB_STATEMENT_TIMEOUT_MS: '500',
    DB_QUERY_TIMEOUT_MS: '900',
    DB_POOL_MAX: '2',
  };
  const p = await spawnApi(vars);
  const auth = `Bearer ${TOKEN}`;
  try {
    assert.is((await http(p.url, 'GET', '/api/v2/apps', { auth })).status, 200);
    proxy.freeze();
    const frozen = await http(p.url, 'GET', '/api/v2/apps', { auth });
    assert.is(frozen.status, 503, frozen.text);
    proxy.thaw();
    await waitFor('the process serves again', async () => (await http(p.url, 'GET', '/api/v2/apps', { auth })).status === 200, 10_000, 100);
  } finally {
    proxy.thaw();
    await p.stop();
  }
  const bad = await spawnApi({ ...vars, DB_STATEMENT_TIMEOUT_MS: 'soon' }, { waitHealthy: false });
  assert.ok((await bad.exited) !== 0);
  assert.match(bad.output(), /DB_STATEMENT_TIMEOUT_MS/);
});

test.run();
