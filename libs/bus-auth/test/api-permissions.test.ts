import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { apiPermissions, consumerName, groupConsumerName } from '../src/index.ts';

/** The API's rights in a region's JetStream domain (`$JS.<domain>.API`): its hosts' consumers there, nothing else. */

/** NATS subject matching: `*` one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

const allowed = (subject: string) => apiPermissions().pub.allow.some((p) => matches(p, subject));

test('the API makes, reads and deletes consumers on APPS and GROUPS in any domain', () => {
  const c = consumerName('h1', 'web');
  const g = groupConsumerName('h1', 'lobby');
  for (const subject of [
    '$JS.eu.API.INFO',
    `$JS.eu.API.CONSUMER.CREATE.APPS.${c}.apps.web`,
    `$JS.eu.API.CONSUMER.CREATE.APPS.${c}`,
    `$JS.eu.API.CONSUMER.DURABLE.CREATE.APPS.${c}`,
    `$JS.eu.API.CONSUMER.INFO.APPS.${c}`,
    `$JS.us-east.API.CONSUMER.DELETE.APPS.${c}`,
    `$JS.eu.API.CONSUMER.CREATE.GROUPS.${g}.groups.lobby`,
    `$JS.eu.API.CONSUMER.DELETE.GROUPS.${g}`,
  ]) {
    assert.ok(allowed(subject), subject);
  }
});

test("but not a region's streams, nor another stream's consumers there", () => {
  for (const subject of [
    '$JS.eu.API.STREAM.CREATE.APPS',
    '$JS.eu.API.STREAM.DELETE.APPS',
    '$JS.eu.API.STREAM.PURGE.GROUPS',
    '$JS.eu.API.STREAM.MSG.DELETE.APPS',
    '$JS.eu.API.CONSUMER.CREATE.RESULTS.x',
    '$JS.eu.API.CONSUMER.DELETE.HOSTS.x',
  ]) {
    assert.not.ok(allowed(subject), subject);
  }
});

test.run();
