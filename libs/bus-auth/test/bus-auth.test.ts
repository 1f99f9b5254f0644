import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  busConnectOptions,
  ensureBusDirectory,
  InsecureBusError,
  issueUserCreds,
  jwtPermissions,
  notifierPermissions,
  plaintextRemoteServers,
  readControlPlaneKeys,
  resolverDirOf,
} from '../src/index.ts';

test('plain NATS only on loopback: any other server needs tls:// or a CA', () => {
  assert.equal(plaintextRemoteServers(['nats://127.0.0.1:4222', 'localhost:4222', 'nats://[::1]:4222'], false), []);
  assert.equal(plaintextRemoteServers(['nats://10.0.0.5:4222', 'tls://10.0.0.6:4222', 'nats.example.com:4222'], false), [
    'nats://10.0.0.5:4222',
    'nats.example.com:4222',
  ]);
  assert.equal(plaintextRemoteServers(['nats://10.0.0.5:4222'], true), [], 'with NATS_TLS_CA the client requires TLS');
  assert.throws(
    () => busConnectOptions({ servers: ['nats://10.0.0.5:4222'], creds: 'x', name: 't' }),
    (e: unknown) => e instanceof InsecureBusError && /outside loopback without TLS/.test(e.message),
  );
  const o = busConnectOptions({ servers: ['tls://10.0.0.6:4222'], creds: 'x', name: 't', inboxPrefix: '_INBOX_h1' });
  assert.ok(o.tls, 'tls:// asks for TLS');
  assert.is(o.inboxPrefix, '_INBOX_h1');
});

test('a bus directory is made once, its secrets readable by the owner only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-bus-'));
  try {
    const first = await ensureBusDirectory(dir);
    assert.ok(first.created);
    for (const f of [first.apiCreds, first.notifierCreds, first.adminCreds, first.controlPlaneKeys]) {
      assert.is(statSync(f).mode & 0o077, 0, `${f} is mode 600`);
    }
    const keys = readControlPlaneKeys(first.controlPlaneKeys);
    const again = await ensureBusDirectory(dir);
    assert.not.ok(again.created);
    assert.equal(readControlPlaneKeys(again.controlPlaneKeys), keys, 'the keys are kept');
    assert.match(readFileSync(first.natsConf, 'utf8'), /^operator: /);
    assert.not.match(readFileSync(first.natsConf, 'utf8'), /SA[A-Z2-7]{56}|SO[A-Z2-7]{56}/, 'no seed in the server config');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a bus directory for a server in a container: its resolver folder, the services' files given to their uid", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-bus-'));
  try {
    const owner = { uid: 10001, gid: 10002 };
    const d = await ensureBusDirectory(dir, { resolverDir: '/data/accounts', serviceOwner: owner });
    assert.is(resolverDirOf(readFileSync(d.natsConf, 'utf8')), '/data/accounts');
    for (const f of [d.apiCreds, d.notifierCreds, d.controlPlaneKeys]) {
      const st = statSync(f);
      assert.equal([st.uid, st.gid, st.mode & 0o777], [owner.uid, owner.gid, 0o600], `${f}: the services' uid, mode 600`);
    }
    assert.is(statSync(d.adminCreds).uid, process.getuid?.(), "admin.creds stays the caller's");
    // Kept with the same folder (the owner applied again); refused with another, naming both.
    assert.not.ok((await ensureBusDirectory(dir, { resolverDir: '/data/accounts' })).created);
    try {
      await ensureBusDirectory(dir, { resolverDir: '/elsewhere' });
      assert.unreachable('another resolver folder is refused');
    } catch (err) {
      assert.match((err as Error).message, /names the resolver folder \/data\/accounts, not \/elsewhere/);
    }
    assert.not.ok((await ensureBusDirectory(dir)).created, 'without a resolver folder asked, any is kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a kept bus directory's service credentials are issued again when the code grants them other rights (an upgrade), with the same keys", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-bus-'));
  try {
    const first = await ensureBusDirectory(dir);
    const keys = readFileSync(first.controlPlaneKeys, 'utf8');
    const apiBefore = readFileSync(first.apiCreds, 'utf8');
    // The notifier's creds as an older version issued them: without a stream it manages now.
    const older = { pub: { allow: notifierPermissions().pub.allow.filter((s) => !s.includes('EVENTS')) }, sub: notifierPermissions().sub };
    writeFileSync(first.notifierCreds, (await issueUserCreds(readControlPlaneKeys(first.controlPlaneKeys), { name: 'notifier', permissions: older })).creds);
    const jwtOf = (file: string) => /-----BEGIN NATS USER JWT-----\s+(\S+)\s+/.exec(readFileSync(file, 'utf8'))?.[1] ?? '';
    assert.not.equal(jwtPermissions(jwtOf(first.notifierCreds)), notifierPermissions());

    const again = await ensureBusDirectory(dir);
    assert.not.ok(again.created);
    assert.equal(jwtPermissions(jwtOf(again.notifierCreds)), notifierPermissions(), "the notifier's creds carry today's rights");
    assert.is(readFileSync(again.apiCreds, 'utf8'), apiBefore, "the API's, already right, untouched");
    assert.is(readFileSync(again.controlPlaneKeys, 'utf8'), keys, 'the keys never change');
    assert.is(statSync(again.notifierCreds).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resolverDirOf reads back any folder a config was written with', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', minLength: 1 }), (p) => {
      assert.is(resolverDirOf(`operator: x\nresolver: { type: full, dir: ${JSON.stringify(p)}, allow_delete: false }\n`), p);
    }),
  );
  assert.is(resolverDirOf('operator: x\n'), null);
});

test.run();
