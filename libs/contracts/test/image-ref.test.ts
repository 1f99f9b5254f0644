import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatImageReference, parseImageReference } from '../src/index.ts';

const ok: Array<[string, { registry: string; repository: string; tag: string | null; digest: string | null }]> = [
  ['nginx', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest', digest: null }],
  ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25', digest: null }],
  ['team/app', { registry: 'docker.io', repository: 'team/app', tag: 'latest', digest: null }],
  ['127.0.0.1:5000/nebula/echo:1', { registry: '127.0.0.1:5000', repository: 'nebula/echo', tag: '1', digest: null }],
  ['localhost/a/b/c:v2', { registry: 'localhost', repository: 'a/b/c', tag: 'v2', digest: null }],
  ['registry.example.com:8443/org/sub/img', { registry: 'registry.example.com:8443', repository: 'org/sub/img', tag: 'latest', digest: null }],
  [`img@sha256:${'a'.repeat(64)}`, { registry: 'docker.io', repository: 'library/img', tag: null, digest: `sha256:${'a'.repeat(64)}` }],
  [`r.io/img:t@sha256:${'b'.repeat(64)}`, { registry: 'r.io', repository: 'img', tag: 't', digest: `sha256:${'b'.repeat(64)}` }],
];

for (const [ref, want] of ok) {
  test(`parses ${ref}`, () => {
    assert.equal(parseImageReference(ref), want);
  });
}

for (const bad of ['', 'Nginx', 'r.io/UPPER/case', 'a b', 'img:', 'img:-tag', 'img@sha256:short', 'reg:99999/img', '/img', 'img//x', 'img:t:t2', 'a..b/c']) {
  test(`rejects ${JSON.stringify(bad)}`, () => {
    assert.throws(() => parseImageReference(bad));
  });
}

test('formats a parsed reference fully qualified', () => {
  assert.is(formatImageReference(parseImageReference('nginx')), 'docker.io/library/nginx:latest');
  assert.is(formatImageReference(parseImageReference('127.0.0.1:5000/a:1')), '127.0.0.1:5000/a:1');
});

test.run();
