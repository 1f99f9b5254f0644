import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startNatsServer } from '../src/index.ts';

test('a test nats-server keeps its JetStream data across stop and start', async () => {
  const server = await startNatsServer();
  try {
    let nc = await connect(server.connectOptions('admin'));
    await (await jetstreamManager(nc)).streams.add({ name: 'S', subjects: ['s.>'] });
    await jetstream(nc).publish('s.a', 'hello');
    await nc.close();
    await server.stop();
    const refused = await connect(server.connectOptions('admin', { reconnect: false, timeout: 500 })).then(
      async (c) => {
        await c.close();
        return false;
      },
      () => true,
    );
    assert.ok(refused, 'stopped server refuses connections');
    await server.start();
    nc = await connect(server.connectOptions('admin'));
    const msg = await (await jetstreamManager(nc)).streams.getMessage('S', { last_by_subj: 's.a' });
    assert.is(msg?.string(), 'hello');
    await nc.close();
  } finally {
    await server.cleanup();
  }
});

test("a test nats-server is the pinned one (tools/nats-server.sh, first on PATH through tools/env.sh), not Debian 12's 2.9", async () => {
  const pinned = process.env.NEBULA_NATS_VERSION;
  assert.ok(pinned, 'NEBULA_NATS_VERSION is set by tools/env.sh: run tests through tools/node.sh');
  const server = await startNatsServer();
  try {
    const nc = await connect(server.connectOptions('admin'));
    assert.is(nc.info?.version, pinned);
    await nc.close();
  } finally {
    await server.cleanup();
  }
});

test.run();
