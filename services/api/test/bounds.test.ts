import { createNebulaClient, type RolloutProgress, watchRollout } from '@nebula/client';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, basicHeader, http, startEnv, type TestEnv, TOKEN, uniqueName } from './helpers.ts';

/**
 * Bounded reads over HTTP: open watches per identity (429 above the limit), a keep-alive ping on
 * watch streams, a maximum stream duration after which the client reconnects, tRPC batches capped.
 */
const test = suite('bounds');
let env: TestEnv;
let api: ApiServer;
const WATCH = { maxPerIdentity: 2, maxDurationMs: 700, pingMs: 150 };
let watchRequests = 0;
const open: AbortController[] = [];

test.before(async () => {
  env = await startEnv();
  api = await env.startApi({ server: { watch: WATCH, maxBatchSize: 5 } });
  api.server.on('request', (req: { url?: string }) => {
    if (req.url?.startsWith('/trpc/rollouts.watch')) watchRequests++;
  });
});

test.after(async () => {
  for (const c of open) c.abort();
  await env?.close();
});

/** A rollout that waits for one online host until the test writes that host's result. */
async function pendingRollout(): Promise<{ id: string; finish(): Promise<void> }> {
  const name = uniqueName();
  const hostId = `h-${name}`;
  await env.db
    .insertInto('hosts')
    .values({ id: hostId, apps: [name], running: '[]', cores: 1, memory_mb: 1, worker_version: 't', heartbeat_interval_seconds: 60, last_seen: new Date() })
    .execute();
  const created = await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx' } });
  const id = (created.body as { rollout_id: string }).rollout_id;
  return {
    id,
    async finish() {
      await env.db
        .insertInto('rollout_hosts')
        .values({ rollout_id: id, host: hostId, status: 'applied', containers: '[]', pull_ms: 1, apply_ms: 1, reported_at: new Date() })
        .execute();
    },
  };
}

const watchPath = (id: string) => `/trpc/rollouts.watch?input=${encodeURIComponent(JSON.stringify({ id }))}`;

/** Opens a raw event stream; resolves once the answer's head is in. */
async function openStream(id: string, auth: string): Promise<{ res: Response; stop: AbortController }> {
  const stop = new AbortController();
  open.push(stop);
  const res = await fetch(api.url + watchPath(id), { headers: { authorization: auth, accept: 'text/event-stream' }, signal: stop.signal });
  return { res, stop };
}

/**
 * Reads a stream's text until `until` matches it or the stream ends (`ended`); gives up after
 * `giveUpMs` (`gaveUp`: a stream that never ends must fail the test, not hang it).
 */
async function readUntil(res: Response, until: RegExp, giveUpMs = 8000): Promise<{ text: string; ended: boolean; gaveUp: boolean }> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  let gaveUp = false;
  const timer = setTimeout(() => {
    gaveUp = true;
    void reader.cancel();
  }, giveUpMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, ended: !gaveUp, gaveUp };
      text += dec.decode(value, { stream: true });
      if (until.test(text)) {
        await reader.cancel();
        return { text, ended: false, gaveUp };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

test('open watches per identity are bounded: 429 JSON above the limit, other identities unaffected, a slot frees on close', async () => {
  const r = await pendingRollout();
  const a = await openStream(r.id, basicHeader());
  const b = await openStream(r.id, basicHeader());
  assert.equal([a.res.status, b.res.status], [200, 200]);
  assert.is(a.res.headers.get('content-type'), 'text/event-stream');

  const third = await openStream(r.id, basicHeader());
  assert.is(third.res.status, 429);
  assert.is(third.res.headers.get('content-type'), 'application/json');
  const refusal = (await third.res.json()) as { limit?: unknown; message?: unknown };
  assert.equal(refusal.limit, 2);
  assert.match(String(refusal.message), /at most 2 open watches/);

  const byToken = await openStream(r.id, `Bearer ${TOKEN}`);
  assert.is(byToken.res.status, 200, 'another identity has slots of its own');
  byToken.stop.abort();

  // Through the typed client, the refusal is an error, not a reconnect loop.
  const nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  const err = await watchRollout(nebula, r.id, undefined, AbortSignal.timeout(5000)).then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.ok(err, 'the client watch fails');
  assert.not.match(err!.message, /aborted|timeout/i, `refused, not left waiting: ${err!.message}`);

  a.stop.abort();
  await waitFor(
    'a slot is free again',
    async () => {
      const c = await openStream(r.id, basicHeader());
      c.stop.abort();
      return c.res.status === 200;
    },
    5000,
    50,
  );
  b.stop.abort();
});

test('a watch stream carries keep-alive pings while nothing changes', async () => {
  const r = await pendingRollout();
  const s = await openStream(r.id, basicHeader());
  const { text, gaveUp } = await readUntil(s.res, /event: ping\n[\s\S]*event: ping\n/, 4000);
  assert.not.ok(gaveUp, `no two pings: ${text}`);
  assert.match(text, /"pending":1/);
  assert.ok((text.match(/event: ping\n/g) ?? []).length >= 2, text);
  s.stop.abort();
});

test('a watch stream ends after its maximum duration, without a "return" event; the typed client reconnects and sees completion', async () => {
  const r = await pendingRollout();
  const s = await openStream(r.id, basicHeader());
  const { text, ended } = await readUntil(s.res, /event: return/, 5000);
  assert.ok(ended, 'the server ended the stream');
  assert.not.match(text, /event: return/, 'not a completed subscription: the client reconnects');

  const nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  const before = watchRequests;
  const seen: RolloutProgress[] = [];
  const done = watchRollout(nebula, r.id, (p) => seen.push(p));
  await waitFor('the client reconnected twice', async () => watchRequests - before >= 3, 15_000, 50);
  await r.finish();
  const last = await done;
  assert.is(last.complete, true);
  assert.is(seen[0]!.complete, false);
});

test('tRPC batches are capped: 400 JSON above maxBatchSize, served at it', async () => {
  const batch = (n: number) => `/trpc/${Array.from({ length: n }, () => 'status.get').join(',')}?batch=1&input=${encodeURIComponent(JSON.stringify({}))}`;
  const ok = await http(api.url, 'GET', batch(5));
  assert.is(ok.status, 200, ok.text);
  assert.is((ok.body as unknown[]).length, 5);
  const tooMany = await http(api.url, 'GET', batch(6));
  assert.is(tooMany.status, 400, tooMany.text);
  assert.match(tooMany.text, /batch/i);
  const post = await http(api.url, 'POST', `/trpc/${Array.from({ length: 6 }, () => 'apps.stop').join(',')}?batch=1`, { body: {} });
  assert.is(post.status, 400, post.text);
});

test('history pages: `before` and `limit` walk every revision once, diffs at page edges as on one page; REST and tRPC', async () => {
  const name = uniqueName('hist');
  await http(api.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx:1' } });
  for (let i = 2; i <= 7; i++) await http(api.url, 'PATCH', `/api/v2/apps/${name}/update`, { body: { docker_image: `nginx:${i}` } });
  type Page = { revisions: Array<{ app_id: number; changes: unknown[] }>; next: number | null };
  const whole = (await http(api.url, 'GET', `/api/v2/apps/${name}/history`)).body as Page;
  assert.equal(
    whole.revisions.map((r) => r.app_id),
    [7, 6, 5, 4, 3, 2, 1],
  );
  assert.is(whole.next, null);

  const seen: Page['revisions'] = [];
  let before: number | null | undefined;
  let pages = 0;
  do {
    const q = before ? `?limit=3&before=${before}` : '?limit=3';
    const page = (await http(api.url, 'GET', `/api/v2/apps/${name}/history${q}`)).body as Page;
    assert.ok(page.revisions.length <= 3);
    seen.push(...page.revisions);
    before = page.next;
    pages++;
  } while (before !== null && pages < 10);
  assert.is(pages, 3);
  assert.equal(seen, whole.revisions, 'the pages together are the whole history, diffs included');

  const nebula = createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password });
  const t = await nebula.apps.history.query({ name, limit: 2, before: 3 });
  assert.equal([t.revisions.map((r) => r.app_id), t.next], [[2, 1], null]);
  const exact = await nebula.apps.history.query({ name, limit: 2, before: 4 });
  assert.equal([exact.revisions.map((r) => r.app_id), exact.next], [[3, 2], 2]);

  const bad = await http(api.url, 'GET', `/api/v2/apps/${name}/history?before=zero`);
  assert.is(bad.status, 400, bad.text);
});

test.run();
