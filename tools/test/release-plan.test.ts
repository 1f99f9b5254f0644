import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lddPaths } from '../src/release/base-image.ts';
import { escapeNonAscii, lazyFileOf, packageDirOf } from '../src/release/bundle.ts';
import { type BundleManifest, dockerBuildArgs, formatTable, HASH_LABEL, hashOf, imageTags, staleInputs, WORKER_RUNTIME } from '../src/release/plan.ts';

test('hashOf: moving bytes between parts, or changing any part, changes the hash', () => {
  fc.assert(
    fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 5 }), fc.nat(), fc.nat(), (parts, at, cut) => {
      const i = at % parts.length;
      const p = parts[i] ?? '';
      if (i + 1 < parts.length && p.length > 0) {
        const k = cut % p.length;
        const moved = [...parts];
        moved[i] = p.slice(0, k);
        moved[i + 1] = p.slice(k) + (parts[i + 1] ?? '');
        if (moved[i] !== parts[i]) assert.is.not(hashOf(moved), hashOf(parts));
      }
      const changed = [...parts];
      changed[i] = `${p}x`;
      assert.is.not(hashOf(changed), hashOf(parts));
      assert.is(hashOf([...parts]), hashOf(parts));
    }),
  );
});

test('staleInputs: exactly the inputs whose hash differs or that are gone; all of it when the key changed', () => {
  const inputs = fc.dictionary(fc.stringMatching(/^[a-z/]{1,8}\.ts$/), fc.stringMatching(/^[0-9a-f]{4}$/));
  fc.assert(
    fc.property(inputs, fc.func(fc.option(fc.stringMatching(/^[0-9a-f]{4}$/))), (recorded, now) => {
      const manifest: BundleManifest = { key: 'k', inputs: recorded };
      const current = (p: string) => (p in recorded && now(p) === null ? recorded[p]! : now(p));
      const expected = Object.keys(recorded).filter((p) => current(p) !== recorded[p]);
      assert.equal(staleInputs(manifest, 'k', current), expected);
      assert.equal(staleInputs(manifest, 'other', current), ['(build settings)']);
      assert.equal(staleInputs(null, 'k', current), ['(build settings)']);
    }),
  );
});

test('docker build: the base, the version tag and latest, the hash label, the context last', () => {
  const info = { version: '1.2.3', revision: 'abc', created: '2026-01-01T00:00:00Z', source: 'https://x', licenses: 'MIT' };
  const args = dockerBuildArgs({ service: 'worker', base: 'nebula/node-base:24', hash: 'h1', info, context: '/ctx', dockerfile: '/df' });
  assert.equal(args.slice(0, 4), ['build', '--pull=false', '-f', '/df']);
  const pairs = (flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
  assert.equal(pairs('-t'), imageTags('worker', '1.2.3'));
  assert.equal(pairs('-t'), ['nebula/worker:1.2.3', 'nebula/worker:latest']);
  assert.equal(pairs('--label'), [`${HASH_LABEL}=h1`]);
  assert.ok(pairs('--build-arg').includes('BASE=nebula/node-base:24'));
  assert.ok(pairs('--build-arg').includes('VERSION=1.2.3'));
  assert.is(args[args.length - 1], '/ctx');
});

test('formatTable: a header, one line per row, every column starting at the same place', () => {
  const cell = fc.stringMatching(/^[a-z0-9.]{1,12}$/);
  fc.assert(
    fc.property(fc.array(fc.tuple(cell, cell, cell), { maxLength: 6 }), (rows) => {
      const lines = formatTable(['a', 'b', 'c'], rows).split('\n');
      assert.is(lines.length, rows.length + 1);
      const starts = (line: string, cells: string[]) => {
        let at = 0;
        return cells.map((c) => {
          const i = line.indexOf(c, at);
          at = i + c.length;
          return i;
        });
      };
      const header = starts(lines[0]!, ['a', 'b', 'c']);
      for (const [i, r] of rows.entries()) assert.equal(starts(lines[i + 1]!, r), header);
    }),
  );
});

test('lddPaths: the libraries, resolved or absolute, never the vdso', () => {
  const out = [
    '\tlinux-vdso.so.1 (0x00007ffc)',
    '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f)',
    '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)',
    '\t/lib64/ld-linux-x86-64.so.2 (0x00007f)',
  ].join('\n');
  assert.equal(lddPaths(out), ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libdl.so.2', '/lib64/ld-linux-x86-64.so.2']);
});

test('packageDirOf: the deepest node_modules package, scoped or not; our sources have none', () => {
  assert.is(packageDirOf('node_modules/pg/lib/index.js'), 'node_modules/pg');
  assert.is(packageDirOf('node_modules/@nats-io/jetstream/lib/x.js'), 'node_modules/@nats-io/jetstream');
  assert.is(packageDirOf('node_modules/a/node_modules/@s/b/x.js'), 'node_modules/a/node_modules/@s/b');
  assert.is(packageDirOf('services/worker/src/main.ts'), null);
});

test('escapeNonAscii: ASCII only, and the same string once read back as JavaScript text', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      // Text fit to stand between the quotes of a JSON string as it is.
      const plain = [...s].filter((c) => c.charCodeAt(0) >= 0x20 && c !== '\\' && c !== '"').join('');
      const escaped = escapeNonAscii(plain);
      assert.ok(
        [...escaped].every((c) => c.charCodeAt(0) < 0x80),
        escaped,
      );
      assert.is(JSON.parse(`"${escaped}"`), plain);
    }),
  );
  assert.is(escapeNonAscii('/(ns|µs)/g'), '/(ns|\\u00b5s)/g');
});

test('lazyFileOf: one file per package and module, scoped packages without their slash', () => {
  assert.is(lazyFileOf('node_modules/dockerode/lib/session.js'), 'dockerode-session.cjs');
  assert.is(lazyFileOf('node_modules/docker-modem/lib/ssh.js'), 'docker-modem-ssh.cjs');
  assert.is(lazyFileOf('node_modules/a/node_modules/@scope/pkg/x.cjs'), '@scope-pkg-x.cjs');
});

test('the systemd unit runs the worker with the runtime settings of its image (WORKER_RUNTIME)', () => {
  const unit = readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'nebula-worker.service'), 'utf8');
  const values = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].flatMap((m) => (m[1] ?? '').trim().split(/\s+/));
  const [node, ...args] = values('ExecStart');
  assert.is(node, '/opt/nebula/node/bin/node');
  assert.equal(args, [...WORKER_RUNTIME.nodeArgs, '/opt/nebula/worker/current/main.js']);
  assert.equal(
    values('Environment').sort(),
    Object.entries(WORKER_RUNTIME.env)
      .map(([k, v]) => `${k}=${v}`)
      .sort(),
  );
});

test.run();
