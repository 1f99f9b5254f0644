import { connect } from '@nats-io/transport-node';
import { GenericContainer, Wait } from 'testcontainers';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

test('a throwaway nats-server from the local image, started with testcontainers', async () => {
  const container = await new GenericContainer('nebula/nats:2.10')
    .withExposedPorts(4222)
    .withLabels({ 'io.nebula.test': 'true' })
    .withWaitStrategy(Wait.forLogMessage('Server is ready'))
    .start();
  try {
    const nc = await connect({ servers: `nats://${container.getHost()}:${container.getMappedPort(4222)}` });
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
  }
});

test.run();
