import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadEnv } from '@nebula/service-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveHostId, workerEnvSchema } from '../src/config.ts';

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

test('the new limits have their defaults', () => {
  const env = loadEnv(workerEnvSchema, {});
  assert.is(env.RECONCILE_INTERVAL_SECONDS, 30);
  assert.is(env.MAX_CONTAINERS_PER_APP, 100);
  assert.is(env.MAX_PARALLEL_STARTS, 8);
  assert.is(env.REMOVE_UNSERVED, false);
  assert.is(env.REMOVE_OLD_IMAGES, true);
});

test.run();
