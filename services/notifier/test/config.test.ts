import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dbOptionsFromEnv } from '@nebula/db';
import { loadEnv } from '@nebula/service-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { notifierEnvSchema, optionsFromEnv } from '../src/config.ts';

const creds = join(mkdtempSync(join(tmpdir(), 'notifier-config-')), 'n.creds');
writeFileSync(creds, 'not read beyond start-up', { mode: 0o600 });
const NATS_CREDS = creds;

test('database deadlines come from DB_* variables, with the defaults of @nebula/db', () => {
  assert.equal(dbOptionsFromEnv(notifierEnvSchema.parse({ NATS_CREDS })), {
    max: 10,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 10_000,
    idleInTransactionTimeoutMs: 30_000,
    keepAliveMs: 10_000,
    maxWaiting: 100,
  });
  const set = notifierEnvSchema.parse({
    NATS_CREDS,
    DB_POOL_MAX: '4',
    DB_CONNECT_TIMEOUT_MS: '700',
    DB_STATEMENT_TIMEOUT_MS: '500',
    DB_QUERY_TIMEOUT_MS: '900',
    DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: '2000',
    DB_KEEPALIVE_MS: '0',
    DB_MAX_WAITING: '3',
  });
  assert.equal(dbOptionsFromEnv(set), {
    max: 4,
    connectTimeoutMs: 700,
    statementTimeoutMs: 500,
    queryTimeoutMs: 900,
    idleInTransactionTimeoutMs: 2000,
    keepAliveMs: 0,
    maxWaiting: 3,
  });
  assert.not.ok(notifierEnvSchema.safeParse({ NATS_CREDS, DB_STATEMENT_TIMEOUT_MS: '10' }).success, 'below the minimum');
});

test('NATS_CREDS is required and must be readable; the key refresh is in seconds', () => {
  const problem = (env: Record<string, string>) => {
    try {
      loadEnv(notifierEnvSchema, env);
      return null;
    } catch (err) {
      return err as Error & { variables: string[] };
    }
  };
  assert.equal(problem({})?.variables, ['NATS_CREDS']);
  assert.match(problem({})!.message, /NATS_CREDS: is required/);
  assert.match(problem({ NATS_CREDS: '/nonexistent/x.creds' })!.message, /NATS_CREDS: the creds file \/nonexistent\/x.creds cannot be read \(ENOENT\)/);
  assert.equal(problem({ NATS_CREDS, NATS_TLS_CA: '/nonexistent/ca.pem' })?.variables, ['NATS_TLS_CA']);
  assert.equal(problem({ NATS_CREDS, HOST_KEYS_REFRESH_SECONDS: '0' })?.variables, ['HOST_KEYS_REFRESH_SECONDS']);
  assert.is(optionsFromEnv(loadEnv(notifierEnvSchema, { NATS_CREDS })).hostKeysRefreshMs, 5000);
  assert.is(optionsFromEnv(loadEnv(notifierEnvSchema, { NATS_CREDS, HOST_KEYS_REFRESH_SECONDS: '0.25' })).hostKeysRefreshMs, 250);
});

test.run();
