import { ConfigError, loadEnv } from '@nebula/service-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { apiEnvSchema } from '../src/config.ts';

/** NATS_REGIONS as the API reads it at start: regions, or a config error naming the variable and the entry. */

const required = { NATS_CREDS: '/x/api.creds', BUS_KEYS_FILE: '/x/keys.json' };

test('NATS_REGIONS: the regions; unset or empty: none', () => {
  assert.equal(loadEnv(apiEnvSchema, required).NATS_REGIONS, []);
  assert.equal(loadEnv(apiEnvSchema, { ...required, NATS_REGIONS: '' }).NATS_REGIONS, []);
  assert.equal(loadEnv(apiEnvSchema, { ...required, NATS_REGIONS: 'eu=tls://a:4222,us=tls://b:4222,eu=tls://c:4222' }).NATS_REGIONS, [
    { name: 'eu', servers: ['tls://a:4222', 'tls://c:4222'] },
    { name: 'us', servers: ['tls://b:4222'] },
  ]);
});

test('a wrong entry is a config error naming NATS_REGIONS and the entry, never a password', () => {
  for (const [value, words] of [
    ['eu=tls://a:4222,hub=tls://b:4222', /"hub=tls:\/\/b:4222": "hub" is the hub's own/],
    ['Eu=tls://a:4222', /"Eu=tls:\/\/a:4222": the region name/],
    ['eu=https://a', /nats:\/\/ or tls:\/\//],
    ['eu=tls://me:s3cret@a:4222', /"eu=tls:\/\/\*\*\*@a:4222": no user or password/],
  ] as const) {
    try {
      loadEnv(apiEnvSchema, { ...required, NATS_REGIONS: value });
      assert.unreachable(value);
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.equal((err as ConfigError).variables, ['NATS_REGIONS']);
      assert.match((err as Error).message, words);
      assert.not.match((err as Error).message, /s3cret/);
    }
  }
});

test.run();
