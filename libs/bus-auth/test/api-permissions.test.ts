import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { apiPermissions, consumerName, groupConsumerName, notifierPermissions } from '../src/index.ts';

/**
 * The services' rights in a region's JetStream domain (`$JS.<domain>.API`): each manages there what it
 * owns at the hub (the API: the APPS and GROUPS mirrors and the hosts' consumers on them; the
 * notifier: the region's RESULTS, HOSTS and EVENTS), and nothing of the other's.
 */

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

test("the API makes the region's APPS and GROUPS mirrors, and touches none of the notifier's streams there", () => {
  for (const subject of ['$JS.eu.API.STREAM.CREATE.APPS', '$JS.eu.API.STREAM.UPDATE.GROUPS', '$JS.eu.API.STREAM.INFO.APPS'])
    assert.ok(allowed(subject), subject);
  for (const subject of [
    '$JS.eu.API.STREAM.CREATE.RESULTS',
    '$JS.eu.API.STREAM.DELETE.HOSTS',
    '$JS.eu.API.STREAM.PURGE.EVENTS',
    '$JS.eu.API.CONSUMER.CREATE.RESULTS.x',
    '$JS.eu.API.CONSUMER.DELETE.HOSTS.x',
  ]) {
    assert.not.ok(allowed(subject), subject);
  }
});

test("the notifier makes the region's RESULTS, HOSTS and EVENTS, and touches neither APPS nor GROUPS there", () => {
  const notifier = (subject: string) => notifierPermissions().pub.allow.some((p) => matches(p, subject));
  for (const subject of ['$JS.eu.API.STREAM.CREATE.RESULTS', '$JS.eu.API.STREAM.UPDATE.HOSTS', '$JS.us.API.STREAM.INFO.EVENTS'])
    assert.ok(notifier(subject), subject);
  for (const subject of ['$JS.eu.API.STREAM.CREATE.APPS', '$JS.eu.API.STREAM.DELETE.GROUPS', '$JS.eu.API.CONSUMER.CREATE.APPS.x']) {
    assert.not.ok(notifier(subject), subject);
  }
});

test.run();
