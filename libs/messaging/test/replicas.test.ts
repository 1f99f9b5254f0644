import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AUTO_REPLICAS_MAX, chooseReplicas, clusterSizeOf, MAX_REPLICAS, streamReplicasEnv } from '../src/index.ts';

/** The copies a stream's owner asks for: chooseReplicas (pure) and the cluster's size from INFO. */

const size = fc.integer({ min: 0, max: 12 });
const existing = fc.option(fc.integer({ min: 1, max: MAX_REPLICAS }), { nil: undefined });

test('auto: min(3, servers), never fewer than the stream has, always 1 to 5', () => {
  fc.assert(
    fc.property(size, existing, (n, has) => {
      const r = chooseReplicas('auto', n, has);
      assert.ok(r >= 1 && r <= MAX_REPLICAS, `in range: ${r}`);
      assert.ok(r >= Math.min(AUTO_REPLICAS_MAX, Math.max(1, n)), 'as many as the cluster allows, up to 3');
      if (has !== undefined) assert.ok(r >= has, 'never lowered');
      assert.ok(r <= Math.max(AUTO_REPLICAS_MAX, has ?? 1), 'never more than 3 unless the stream has more');
    }),
  );
});

test('auto grows with the cluster and never shrinks with it', () => {
  fc.assert(
    fc.property(size, size, existing, (a, b, has) => {
      const [small, big] = a <= b ? [a, b] : [b, a];
      assert.ok(chooseReplicas('auto', small, has) <= chooseReplicas('auto', big, has));
    }),
  );
  // Ensured on three servers, then again while two are down: the three copies stay.
  const made = chooseReplicas('auto', 3);
  assert.is(made, 3);
  assert.is(chooseReplicas('auto', 1, made), 3);
  assert.is(chooseReplicas('auto', 1), 1, 'a single server: one copy');
  assert.is(chooseReplicas('auto', 5), 3, 'five servers: three copies');
});

test('an explicit count wins over the cluster and the stream', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: MAX_REPLICAS }), size, existing, (k, n, has) => {
      assert.is(chooseReplicas(k, n, has), k);
    }),
  );
});

test("the cluster's size from a server's INFO: its connect_urls (its own among them); a lone server is one", () => {
  assert.is(clusterSizeOf(undefined), 1);
  assert.is(clusterSizeOf({}), 1);
  assert.is(clusterSizeOf({ connect_urls: ['127.0.0.1:4222', '127.0.0.1:4223'] }), 1, 'no cluster named: a lone server');
  assert.is(clusterSizeOf({ cluster: 'nebula' }), 1);
  assert.is(clusterSizeOf({ cluster: 'nebula', connect_urls: ['127.0.0.1:4222', '127.0.0.1:4223', '127.0.0.1:4224'] }), 3);
  assert.is(clusterSizeOf({ cluster: 'nebula', connect_urls: ['127.0.0.1:4222', '127.0.0.1:4222'] }), 1, 'each URL once');
});

test('NATS_STREAM_REPLICAS: auto unless set; 1 to 5', () => {
  assert.is(streamReplicasEnv.parse(undefined), 'auto');
  assert.is(streamReplicasEnv.parse('auto'), 'auto');
  assert.is(streamReplicasEnv.parse('3'), 3);
  for (const bad of ['0', '6', '2.5', 'three', 'AUTO ']) assert.not.ok(streamReplicasEnv.safeParse(bad).success, bad);
});

test.run();
