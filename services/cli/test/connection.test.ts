import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveConnection } from '../src/connection.ts';
import { UsageError } from '../src/errors.ts';

/** Where the URL and credentials come from: flags, then environment, then the local admin file. */
const dir = mkdtempSync(join(tmpdir(), 'nebula-conn-'));
const adminFile = join(dir, 'api-admin-password');
const none = join(dir, 'missing');

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('flags win over the environment; a token over basic auth', () => {
  const env = { NEBULA_URL: 'http://env:1', NEBULA_USER: 'eu', NEBULA_PASSWORD: 'ep', NEBULA_TOKEN: 'et' };
  assert.equal(resolveConnection({ url: 'http://flag:2/', user: 'fu', password: 'fp' }, env, none), {
    url: 'http://flag:2',
    username: 'fu',
    password: 'fp',
    source: 'flags',
  });
  assert.equal(resolveConnection({ token: 'ft' }, env, none), { url: 'http://env:1', token: 'ft', source: 'flags' });
  assert.equal(resolveConnection({}, env, none), { url: 'http://env:1', token: 'et', source: 'env' });
  assert.equal(resolveConnection({}, { NEBULA_USER: 'eu', NEBULA_PASSWORD: 'ep' }, none), {
    url: 'http://127.0.0.1:8080',
    username: 'eu',
    password: 'ep',
    source: 'env',
  });
});

test('nothing given: the local admin of `npm start` when its password file exists, else no credentials', () => {
  writeFileSync(adminFile, 's3cret\n');
  assert.equal(resolveConnection({}, {}, adminFile), { url: 'http://127.0.0.1:8080', username: 'admin', password: 's3cret', source: 'local admin' });
  assert.equal(resolveConnection({}, {}, none), { url: 'http://127.0.0.1:8080', source: 'none' });
});

test('half a credential or a bad URL is a usage error', () => {
  assert.throws(
    () => resolveConnection({ user: 'u' }, {}, none),
    (e: unknown) => e instanceof UsageError,
  );
  assert.throws(
    () => resolveConnection({}, { NEBULA_USER: 'u' }, none),
    (e: unknown) => e instanceof UsageError,
  );
  assert.throws(
    () => resolveConnection({ url: 'ftp://x' }, {}, none),
    (e: unknown) => e instanceof UsageError,
  );
  assert.throws(
    () => resolveConnection({}, { NEBULA_URL: 'nope' }, none),
    (e: unknown) => e instanceof UsageError,
  );
});

test.run();
