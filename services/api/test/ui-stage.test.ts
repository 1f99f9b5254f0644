import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { challengesBrowser } from '../src/http/auth-stage.ts';
import { createUiStage, uiTarget } from '../src/http/ui-stage.ts';

/**
 * The dashboard's files (http/ui-stage.ts): index.html for client routes, hashed assets cached for
 * good, a CSP of self only on every answer, nothing outside the build folder; and the 401 of a
 * page's own fetch carries no Basic challenge (the browser's native prompt would hold it).
 */
const test = suite('ui stage');
let server: Server;
let base = '';

test.before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-ui-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="/ui/assets/main-AB12.js"></script>');
  writeFileSync(join(dir, 'assets', 'main-AB12.js'), 'console.log(1)');
  writeFileSync(join(dir, 'secret.txt'), 'outside the assets');
  const stage = createUiStage(dir);
  server = createServer((req, res) => stage(req, res, new URL(req.url ?? '/', 'http://x').pathname));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

test.after(() => new Promise<void>((r) => server.close(() => r())));

test('client routes answer index.html, not cached, with a self-only CSP', async () => {
  for (const path of ['/ui', '/ui/', '/ui/apps/web', '/ui/rollouts/0b9c']) {
    const r = await fetch(base + path);
    assert.is(r.status, 200, path);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
    assert.is(r.headers.get('cache-control'), 'no-cache');
    assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'; script-src 'self'/);
    assert.is(r.headers.get('x-frame-options'), 'DENY');
  }
});

test('a hashed asset is served with its type and cached for good', async () => {
  const r = await fetch(`${base}/ui/assets/main-AB12.js`);
  assert.is(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.match(r.headers.get('cache-control') ?? '', /immutable/);
  assert.is(await r.text(), 'console.log(1)');
});

test('nothing outside the assets: missing files, dotted names and climbs are 404 JSON; changes 405', async () => {
  for (const path of ['/ui/assets/none.js', '/ui/secret.txt', '/ui/assets/../secret.txt', '/ui/assets/%2e%2e/secret.txt', '/ui/x.php']) {
    const r = await fetch(base + path);
    assert.is(r.status, 404, path);
    assert.match(r.headers.get('content-type') ?? '', /json/);
  }
  const post = await fetch(`${base}/ui/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.is(post.status, 405);
});

test('uiTarget never names a file outside assets/', () => {
  fc.assert(
    fc.property(fc.string(), (s) => {
      const t = uiTarget(`/ui/${s}`);
      if (t.kind === 'asset') assert.ok(t.file.startsWith('assets/') && !t.file.includes('..'), t.file);
    }),
  );
});

test("a Basic challenge for curl and SDKs and navigations, none for a page's own fetch", () => {
  assert.ok(challengesBrowser({}));
  assert.ok(challengesBrowser({ 'sec-fetch-mode': 'cors' }), 'Node fetch sends Sec-Fetch-Mode only');
  assert.ok(challengesBrowser({ 'sec-fetch-dest': 'document' }));
  assert.not.ok(challengesBrowser({ 'sec-fetch-dest': 'empty', 'sec-fetch-mode': 'same-origin' }));
});

test.run();
