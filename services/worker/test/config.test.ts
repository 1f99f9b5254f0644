import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadEnv } from '@nebula/service-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostPolicyFromEnv, resolveHostId, workerEnvSchema } from '../src/config.ts';
import { DEFAULT_HOST_POLICY } from '../src/planner/host-policy.ts';

/** The worker's environment: a host id that stays the same across restarts, never cut. */
const dir = mkdtempSync(join(tmpdir(), 'worker-config-'));
const file = (name: string, content: string) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

test('without HOST_ID the host id is the machine id (MACHINE_ID_FILE), not the hostname', () => {
  const env = loadEnv(workerEnvSchema, { MACHINE_ID_FILE: file('machine-id', '3d1219c7c4c5404aaa1f6d2a48adfda4\n') });
  assert.is(resolveHostId(env), '3d1219c7c4c5404aaa1f6d2a48adfda4');
  assert.is(loadEnv(workerEnvSchema, {}).MACHINE_ID_FILE, '/etc/machine-id');
});

test('HOST_ID wins over the machine id', () => {
  const env = loadEnv(workerEnvSchema, { HOST_ID: 'edge-7', MACHINE_ID_FILE: file('other', 'abc\n') });
  assert.is(resolveHostId(env), 'edge-7');
});

test('no HOST_ID and no readable machine id: a clear error naming both variables', () => {
  const env = loadEnv(workerEnvSchema, { MACHINE_ID_FILE: join(dir, 'missing') });
  try {
    resolveHostId(env);
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.equal((err as ConfigError).variables, ['HOST_ID', 'MACHINE_ID_FILE']);
    assert.match((err as Error).message, /HOST_ID is not set/);
  }
  assert.throws(() => resolveHostId(loadEnv(workerEnvSchema, { MACHINE_ID_FILE: file('empty', '\n') })), /not a valid host id/);
});

test('a host id longer than 63 characters is refused, not cut', () => {
  const long = 'h'.repeat(64);
  try {
    loadEnv(workerEnvSchema, { HOST_ID: long });
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.equal((err as ConfigError).variables, ['HOST_ID']);
    assert.match((err as Error).message, /HOST_ID: is longer than 63 characters/);
  }
  assert.throws(() => resolveHostId(loadEnv(workerEnvSchema, { MACHINE_ID_FILE: file('long', `${long}\n`) })), /longer than 63/);
  assert.is(loadEnv(workerEnvSchema, { HOST_ID: 'h'.repeat(63) }).HOST_ID, 'h'.repeat(63));
});

test('DEVICE_GROUP: optional (empty is none), a group name or a ConfigError naming it; with APP_NAME or without', () => {
  assert.is(loadEnv(workerEnvSchema, {}).DEVICE_GROUP, undefined);
  assert.is(loadEnv(workerEnvSchema, { DEVICE_GROUP: ' ' }).DEVICE_GROUP, undefined);
  const both = loadEnv(workerEnvSchema, { DEVICE_GROUP: 'edge-eu', APP_NAME: 'web' });
  assert.equal([both.DEVICE_GROUP, both.APP_NAME], ['edge-eu', ['web']]);
  try {
    loadEnv(workerEnvSchema, { DEVICE_GROUP: 'a.b' });
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.equal((err as ConfigError).variables, ['DEVICE_GROUP']);
  }
});

test('the new limits have their defaults', () => {
  const env = loadEnv(workerEnvSchema, {});
  assert.is(env.RECONCILE_INTERVAL_SECONDS, 30);
  assert.is(env.MAX_CONTAINERS_PER_APP, 100);
  assert.is(env.MAX_PARALLEL_STARTS, 8);
  assert.is(env.REMOVE_UNSERVED, false);
  assert.is(env.REMOVE_OLD_IMAGES, true);
});

test("NATS_URL: one server or a cluster's, comma-separated (as a join command names them)", () => {
  assert.equal(loadEnv(workerEnvSchema, {}).NATS_URL, ['nats://127.0.0.1:4222']);
  assert.equal(loadEnv(workerEnvSchema, { NATS_URL: 'tls://n1.example:4222, tls://n2.example:4222,tls://n3.example:4222' }).NATS_URL, [
    'tls://n1.example:4222',
    'tls://n2.example:4222',
    'tls://n3.example:4222',
  ]);
  try {
    loadEnv(workerEnvSchema, { NATS_URL: 'tls://n1.example:4222,not a url' });
    assert.unreachable('a list with a bad URL is refused');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, 'NATS_URL');
  }
});

test('host policy: everything refused by default; each setting opts in', () => {
  assert.equal(hostPolicyFromEnv(loadEnv(workerEnvSchema, {})), DEFAULT_HOST_POLICY);
  const p = hostPolicyFromEnv(
    loadEnv(workerEnvSchema, {
      WORKER_ALLOW_PRIVILEGED: 'true',
      WORKER_ALLOW_DEVICES: '/dev/ttyUSB0, /dev/dri/../dri/renderD128,/dev/ttyUSB0',
      WORKER_ALLOW_HOST_NETWORK: 'yes',
      WORKER_ALLOWED_BIND_ROOTS: '/srv/data/, /mnt/media',
      WORKER_ALLOW_DOCKER_SOCKET: '1',
    }),
  );
  assert.equal(p, {
    allowPrivileged: true,
    allowDevices: ['/dev/ttyUSB0', '/dev/dri/renderD128'],
    allowHostNetwork: true,
    allowedBindRoots: ['/srv/data', '/mnt/media'],
    allowDockerSocket: true,
    dockerSockets: DEFAULT_HOST_POLICY.dockerSockets,
  });
  assert.is(loadEnv(workerEnvSchema, { WORKER_ALLOW_DEVICES: 'true' }).WORKER_ALLOW_DEVICES, true);
  assert.is(loadEnv(workerEnvSchema, { WORKER_ALLOW_DEVICES: 'FALSE' }).WORKER_ALLOW_DEVICES, false);
  // The engine's own socket, when DOCKER_HOST names one elsewhere, is a Docker socket too.
  const own = hostPolicyFromEnv(loadEnv(workerEnvSchema, { DOCKER_HOST: 'unix:///srv/engine//docker.sock' }));
  assert.equal(own.dockerSockets, [...DEFAULT_HOST_POLICY.dockerSockets, '/srv/engine/docker.sock']);
  assert.equal(hostPolicyFromEnv(loadEnv(workerEnvSchema, { DOCKER_HOST: 'tcp://10.0.0.2:2376' })).dockerSockets, DEFAULT_HOST_POLICY.dockerSockets);
});

test('host policy: a relative bind root or device, or a word that is not a boolean, is a ConfigError naming the variable', () => {
  for (const [name, value, message] of [
    ['WORKER_ALLOWED_BIND_ROOTS', '/srv/data,srv/other', /WORKER_ALLOWED_BIND_ROOTS: "srv\/other" is not an absolute path/],
    ['WORKER_ALLOW_DEVICES', 'ttyUSB0', /WORKER_ALLOW_DEVICES: "ttyUSB0" is neither true, false nor an absolute host device path/],
    ['WORKER_ALLOW_PRIVILEGED', 'sure', /WORKER_ALLOW_PRIVILEGED/],
    ['WORKER_ALLOW_DOCKER_SOCKET', 'on', /WORKER_ALLOW_DOCKER_SOCKET/],
    ['WORKER_ALLOW_HOST_NETWORK', 'maybe', /WORKER_ALLOW_HOST_NETWORK/],
  ] as const) {
    try {
      loadEnv(workerEnvSchema, { [name]: value });
      assert.unreachable(`${name}=${value} accepted`);
    } catch (err) {
      assert.instance(err, ConfigError, `${name}=${value}`);
      assert.equal((err as ConfigError).variables, [name]);
      assert.match((err as Error).message, message);
    }
  }
});

test.run();
