import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { busConnectOptions, ensureBusDirectory } from '@nebula/bus-auth';
import { GenericContainer, Wait } from 'testcontainers';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

test('a throwaway nats-server from the local image, started with testcontainers, secured', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-tc-nats-'));
  const bus = await ensureBusDirectory(dir, { resolverDir: '/data/accounts' });
  const container = await new GenericContainer('nebula/nats:2.10')
    .withCopyContentToContainer([{ content: readFileSync(bus.natsConf, 'utf8'), target: '/etc/nats/nats.conf' }])
    .withCommand(['-c', '/etc/nats/nats.conf', '-js', '-sd', '/data'])
    .withExposedPorts(4222)
    .withLabels({ 'io.nebula.test': 'true' })
    .withWaitStrategy(Wait.forLogMessage('Server is ready'))
    .start();
  try {
    // Published on every address of the machine: loopback, where plain NATS is allowed.
    const url = `nats://127.0.0.1:${container.getMappedPort(4222)}`;
    const anonymous = await connect({ servers: url, reconnect: false, timeout: 2000 }).then(
      async (c) => {
        await c.close();
        return 'connected';
      },
      () => 'refused',
    );
    assert.is(anonymous, 'refused');
    const nc = await connect(busConnectOptions({ servers: [url], creds: readFileSync(bus.adminCreds, 'utf8'), name: 'tc' }));
    const sub = nc.subscribe('ping', {
      max: 1,
      callback: (_err, msg) => {
        msg.respond('pong');
      },
    });
    const reply = await nc.request('ping', '', { timeout: 2000 });
    assert.is(reply.string(), 'pong');
    assert.ok(nc.info?.jetstream, 'JetStream enabled');
    assert.is(nc.info?.version, process.env.NEBULA_NATS_VERSION, 'the image holds the pinned nats-server');
    sub.unsubscribe();
    await nc.close();
  } finally {
    await container.stop({ timeout: 1000 });
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
