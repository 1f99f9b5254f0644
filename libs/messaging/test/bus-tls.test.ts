import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { busConnectOptions } from '@nebula/bus-auth';
import { startNatsServer } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/**
 * TLS to the bus with a private CA (NATS_TLS_CA): the server's certificate is checked against it,
 * and a client that does not trust the CA does not connect. openssl makes the CA and the
 * certificate (the stack installs it).
 */
test('a server with TLS: reached with NATS_TLS_CA, refused without it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=nebula test CA');
  ssl('req', '-newkey', 'ed25519', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
  const nats = await startNatsServer({ config: `tls { cert_file: "${join(dir, 'server.pem')}", key_file: "${join(dir, 'server.key')}" }` });
  try {
    const creds = nats.creds.admin;
    const url = `tls://127.0.0.1:${nats.port}`;
    const nc = await connect(busConnectOptions({ servers: [url], creds, name: 'tls', tlsCaFile: join(dir, 'ca.pem') }));
    assert.ok(nc.info?.tls_required, 'the server requires TLS');
    assert.is((await nc.request('$JS.API.INFO', '', { timeout: 2000 })).json<{ type: string }>().type, 'io.nats.jetstream.api.v1.account_info_response');
    await nc.close();
    const untrusted = await connect({ ...busConnectOptions({ servers: [url], creds, name: 'tls' }), reconnect: false, timeout: 2000 }).then(
      async (c) => {
        await c.close();
        return 'connected';
      },
      (err: Error) => err.message,
    );
    assert.is.not(untrusted, 'connected', 'a certificate from an unknown CA is refused');
  } finally {
    await nats.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
