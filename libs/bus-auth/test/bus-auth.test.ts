import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { busConnectOptions, ensureBusDirectory, InsecureBusError, plaintextRemoteServers, readControlPlaneKeys } from '../src/index.ts';

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

test.run();
