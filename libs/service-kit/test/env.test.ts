import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { ConfigError, envVar, loadEnv } from '../src/index.ts';

const schema = z.object({ PORT: envVar.port(8080), URL: z.string().url(), FLAG: envVar.bool(false) });

test('defaults apply and values are coerced', () => {
  assert.equal(loadEnv(schema, { URL: 'http://x', FLAG: 'yes' }), { PORT: 8080, URL: 'http://x', FLAG: true });
});

test('a wrong or missing variable is named, its value never echoed', () => {
  try {
    loadEnv(schema, { PORT: 'secret-value', FLAG: 'maybe' });
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, ConfigError);
    const e = err as ConfigError;
    assert.equal(e.variables.sort(), ['FLAG', 'PORT', 'URL']);
    assert.match(e.message, 'URL: is required');
    assert.not.match(e.message, 'secret-value');
  }
});

test('an empty value counts as unset', () => {
  assert.is(loadEnv(schema, { URL: 'http://x', PORT: '' }).PORT, 8080);
});

test.run();
