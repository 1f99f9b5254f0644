import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkBoundaries, importsOf } from '../src/check-boundaries.ts';
import { keysIn, secretsIn } from '../src/e2e/secret-scan.ts';
import { parseUvuSummary } from '../src/run-tests.ts';

function write(root: string, path: string, text: string) {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

function fixture(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'boundaries-'));
  const project = (dir: string, name: string, tags: string[], deps: Record<string, string> = {}) => {
    write(root, `${dir}/project.json`, JSON.stringify({ name, tags }));
    write(root, `${dir}/package.json`, JSON.stringify({ name: `@nebula/${name}`, dependencies: deps }));
  };
  project('libs/contracts', 'contracts', ['scope:shared', 'type:lib']);
  project('libs/db', 'db', ['scope:data', 'type:lib']);
  project('services/api', 'api', ['scope:api', 'type:service'], { '@nebula/contracts': '0.1.0', '@nebula/db': '0.1.0' });
  project('services/worker', 'worker', ['scope:worker', 'type:service'], { '@nebula/contracts': '0.1.0', '@nebula/db': '0.1.0' });
  project('tools', 'tools', ['scope:tools', 'type:tool']);
  for (const [p, t] of Object.entries(files)) write(root, p, t);
  return root;
}

test('a clean tree has no violations', () => {
  const root = fixture({
    'services/worker/src/runtime/docker.ts': "import Docker from 'dockerode';",
    'services/api/src/db/db.ts': "import { Kysely } from 'kysely';\nimport pg from 'pg';",
    'libs/db/src/index.ts': "import { Kysely } from 'kysely';",
    'services/api/src/main.ts': "import { createDb } from '@nebula/db';",
    'services/api/src/router.ts': "import { initTRPC } from '@trpc/server';\nimport { x } from '@nebula/contracts';",
  });
  assert.equal(checkBoundaries(root), []);
});

test('each rule fails the check when broken', () => {
  const root = fixture({
    'services/worker/src/main.ts': "import Docker from 'dockerode';\nimport { initTRPC } from '@trpc/server';",
    'services/api/src/routers/apps.ts': "import { sql } from 'kysely';\nimport { x } from '@nebula/contracts/src/app.ts';",
    'services/api/src/bad.ts': "import { y } from '../../worker/src/main.ts';\nimport { z } from '@nebula/worker';",
    'libs/contracts/src/index.ts': "export * from '@nebula/api';",
    'services/worker/src/state.ts': "import { createDb } from '@nebula/db';",
  });
  const messages = checkBoundaries(root).map((v) => `${v.file}:${v.line} ${v.message}`);
  const expect = [
    /worker\/src\/main.ts:1 .*dockerode only/,
    /worker\/src\/main.ts:2 .*@trpc\/server only in the API/,
    /api\/src\/routers\/apps.ts:1 .*kysely only/,
    /api\/src\/routers\/apps.ts:2 deep import/,
    /api\/src\/bad.ts:1 relative import .* leaves project/,
    /api\/src\/bad.ts:2 .*not declared/,
    /api\/src\/bad.ts:2 service api must not depend on service worker/,
    /contracts\/src\/index.ts:1 lib contracts must not depend on service api/,
    /worker\/src\/state.ts:1 worker \(scope:worker\) must not depend on db \(scope:data\)/,
  ];
  for (const re of expect)
    assert.ok(
      messages.some((m) => re.test(m)),
      `expected ${re} in\n${messages.join('\n')}`,
    );
});

test('the simulated hosts (scope:fleet) serve the tools and the test-kit, never a service', () => {
  const root = fixture({
    'libs/local-fleet/project.json': JSON.stringify({ name: 'local-fleet', tags: ['scope:fleet', 'type:lib'] }),
    'libs/local-fleet/package.json': JSON.stringify({ name: '@nebula/local-fleet' }),
    'libs/test-kit/project.json': JSON.stringify({ name: 'test-kit', tags: ['scope:shared', 'type:lib'] }),
    'libs/test-kit/package.json': JSON.stringify({ name: '@nebula/test-kit', dependencies: { '@nebula/local-fleet': '0.1.0' } }),
    'libs/test-kit/src/fleet.ts': "import { startHosts } from '@nebula/local-fleet';",
    'tools/package.json': JSON.stringify({ name: '@nebula/tools', dependencies: { '@nebula/local-fleet': '0.1.0' } }),
    'tools/src/fleet/main.ts': "import { startHosts } from '@nebula/local-fleet';",
    'services/worker/package.json': JSON.stringify({ name: '@nebula/worker', dependencies: { '@nebula/local-fleet': '0.1.0' } }),
    'services/worker/src/main.ts': "import { startHosts } from '@nebula/local-fleet';",
  });
  assert.equal(
    checkBoundaries(root).map((v) => `${v.file}:${v.line} ${v.message}`),
    ['services/worker/src/main.ts:1 worker (scope:worker) must not depend on local-fleet (scope:fleet)'],
  );
});

test('libs/client may import @nebula/api type-only; a value import is still refused', () => {
  const files = (client: string) => ({
    'libs/client/project.json': JSON.stringify({ name: 'client', tags: ['scope:shared', 'type:lib'] }),
    'libs/client/package.json': JSON.stringify({ name: '@nebula/client', devDependencies: { '@nebula/api': '0.1.0' } }),
    'libs/client/src/index.ts': client,
  });
  const ok = fixture(files("import type { AppRouter } from '@nebula/api';\nexport type { AppRouter as R } from '@nebula/api';"));
  assert.equal(checkBoundaries(ok), []);
  for (const bad of [
    "import { createApiServer } from '@nebula/api';",
    "import { type AppRouter } from '@nebula/api';", // kept as a run-time import under verbatimModuleSyntax
    'const api = await import(\x27@nebula/api\x27);', // (escaped so this file's own scan does not see it)
    "export * from '@nebula/api';",
  ]) {
    const messages = checkBoundaries(fixture(files(bad))).map((v) => `${v.file}:${v.line} ${v.message}`);
    assert.ok(
      messages.some((m) => /client\/src\/index.ts:1 lib client must not depend on service api/.test(m)),
      `${bad}\n${messages.join('\n')}`,
    );
  }
  // The exception is for libs/client only.
  const other = fixture({
    'libs/contracts/package.json': JSON.stringify({ name: '@nebula/contracts', dependencies: { '@nebula/api': '0.1.0' } }),
    'libs/contracts/src/index.ts': "import type { AppRouter } from '@nebula/api';",
  });
  assert.ok(checkBoundaries(other).some((v) => v.message === 'lib contracts must not depend on service api'));
});

test('named test folders may import named services; their source and other tests may not', () => {
  const root = fixture({
    'services/api/package.json': JSON.stringify({
      name: '@nebula/api',
      dependencies: { '@nebula/contracts': '0.1.0' },
      devDependencies: { '@nebula/worker': '0.1.0' },
    }),
    'services/api/test/watch.test.ts': "import { createWorker } from '@nebula/worker';",
    'services/api/src/leak.ts': "import { createWorker } from '@nebula/worker';",
    'services/worker/test/x.test.ts': "import { createApiServer } from '@nebula/api';",
  });
  const messages = checkBoundaries(root).map((v) => `${v.file}:${v.line} ${v.message}`);
  assert.not.ok(
    messages.some((m) => m.startsWith('services/api/test/')),
    messages.join('\n'),
  );
  assert.ok(
    messages.some((m) => /api\/src\/leak.ts:1 service api must not depend on service worker/.test(m)),
    messages.join('\n'),
  );
  assert.ok(
    messages.some((m) => /worker\/test\/x.test.ts:1 service worker must not depend on service api/.test(m)),
    messages.join('\n'),
  );
});

test('import specifiers are found in every syntax', () => {
  const src = "import a from 'a';\nimport type { B } from 'b';\nexport { c } from 'c';\nconst d = await import('d');\nimport 'e';";
  assert.equal(
    importsOf(src).map((i) => i.spec),
    ['a', 'b', 'c', 'd', 'e'],
  );
  assert.equal(
    importsOf(src).map((i) => i.typeOnly),
    [false, true, false, false, false],
  );
});

test('uvu summaries are summed; crashes and odd exits count as failures', () => {
  const out = 'Total:     3\n  Passed:    2\n  Skipped:   1\n ... Total: 2\n Passed: 2\n Skipped: 0';
  assert.equal(parseUvuSummary(out, 1), { passed: 4, failed: 1, skipped: 1 });
  assert.equal(parseUvuSummary('Error: boom', 1), { passed: 0, failed: 1, skipped: 0 });
  assert.equal(parseUvuSummary('Total: 1\nPassed: 1\nSkipped: 0', 7), { passed: 1, failed: 1, skipped: 0 });
});

test('the log scan finds each secret and the keys of a creds file, and nothing else', () => {
  const seed = `SU${'A'.repeat(56)}`;
  const jwt = 'eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVQUJDRCJ9.c2lnbmF0dXJlLXBhcnQ';
  const keys = keysIn('api.creds', `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n`);
  assert.equal(
    keys.map((k) => k.label),
    ['api.creds: seed', 'api.creds: jwt'],
  );
  const secrets = [...keys, { label: 'password', value: 'pw-123456789' }, { label: 'short', value: 'abc' }];
  assert.equal(secretsIn('{"msg":"request","user":"admin"} abc', secrets), [], 'a short secret is not looked for');
  assert.equal(secretsIn(`{"creds":"${seed}"} {"password":"pw-123456789"}`, secrets), ['api.creds: seed', 'password']);
  assert.equal(secretsIn(`jwt ${jwt}`, secrets), ['api.creds: jwt']);
});

test.run();
