import { dbOptionsFromEnv } from '@nebula/db';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { notifierEnvSchema } from '../src/config.ts';

test('database deadlines come from DB_* variables, with the defaults of @nebula/db', () => {
  assert.equal(dbOptionsFromEnv(notifierEnvSchema.parse({})), {
    max: 10,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 10_000,
    idleInTransactionTimeoutMs: 30_000,
    keepAliveMs: 10_000,
    maxWaiting: 100,
  });
  const set = notifierEnvSchema.parse({
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
  assert.not.ok(notifierEnvSchema.safeParse({ DB_STATEMENT_TIMEOUT_MS: '10' }).success, 'below the minimum');
});

test.run();
