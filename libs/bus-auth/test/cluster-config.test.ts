import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClusterConfigError, clusterServerConfig, createBusSetup, localClusterNodes, resolverDirOf } from '../src/index.ts';

/** The nats.conf of server i of N (pure): the bus's keys, routes to the others, data of its own. */

const setup = await createBusSetup();
const busConfig = setup.serverConfig('/var/lib/nebula/bus/accounts');

const routesOf = (conf: string) =>
  [...(/routes: \[([^\]]*)\]/.exec(conf)?.[1] ?? '').matchAll(/"nats-route:\/\/127\.0\.0\.1:(\d+)"/g)].map((m) => Number(m[1]));

test("server i of N: routes to every server, itself included (the meta group bootstraps at the routes' count); its own name, ports, store and resolver folder; the same operator", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 7 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
      fc.integer({ min: 1024, max: 50_000 }),
      ([n, i], port) => {
        const nodes = localClusterNodes(n, { dir: '/tmp/c', clientPort: port, clusterPort: port + 100, monitorPort: port + 200 });
        const conf = clusterServerConfig({ busConfig, nodes, index: i });
        const self = nodes[i]!;
        assert.equal(routesOf(conf).sort(), nodes.map((x) => x.clusterPort).sort());
        assert.ok(conf.includes(`server_name: "${self.name}"`));
        assert.ok(conf.includes(`listen: "127.0.0.1:${self.clientPort}"`));
        assert.ok(conf.includes(`listen: "127.0.0.1:${self.clusterPort}"`));
        assert.ok(conf.includes(`http: "127.0.0.1:${self.monitorPort}"`));
        assert.ok(conf.includes(`store_dir: "/tmp/c/${self.name}/jetstream"`));
        assert.is(resolverDirOf(conf), `/tmp/c/${self.name}/accounts`);
        // The operator and the preloaded accounts are the bus's, unchanged.
        for (const line of busConfig.split('\n').filter((l) => !l.startsWith('resolver:'))) assert.ok(conf.includes(line), line);
      },
    ),
  );
});

const refused = (e: unknown) => e instanceof ClusterConfigError;

test('refused: a route outside loopback without TLS, two servers of one name, a bus config without resolver', () => {
  const nodes = localClusterNodes(3, { dir: '/tmp/c', clientPort: 4222, clusterPort: 6222 });
  const remote = nodes.map((n, i) => ({ ...n, host: `10.0.0.${i + 1}` }));
  assert.throws(
    () => clusterServerConfig({ busConfig, nodes: remote, index: 0 }),
    (e: unknown) => e instanceof ClusterConfigError && /TLS/.test(String(e)),
  );
  const tls = clusterServerConfig({ busConfig, nodes: remote, index: 0, routeTls: { certFile: '/c.pem', keyFile: '/k.pem', caFile: '/ca.pem' } });
  assert.match(tls, '"tls://10.0.0.1:6222", "tls://10.0.0.2:6223", "tls://10.0.0.3:6224"');
  assert.match(tls, 'verify: true');
  assert.throws(() => clusterServerConfig({ busConfig, nodes: [nodes[0]!, { ...nodes[1]!, name: 'n1' }], index: 0 }), refused);
  assert.throws(() => clusterServerConfig({ busConfig: 'operator: x\n', nodes, index: 0 }), refused);
  assert.throws(() => clusterServerConfig({ busConfig, nodes, index: 3 }), refused);
});

test.run();
