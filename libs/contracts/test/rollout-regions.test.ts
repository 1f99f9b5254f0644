import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HUB_DOMAIN, REGION_NAME, ROLLOUT_HOST_STATES, type RolloutHostRegion, rolloutRegions, sumRegions } from '../src/index.ts';

const region = fc.oneof(
  fc.constant(null),
  fc.stringMatching(REGION_NAME).filter((n) => n !== HUB_DOMAIN),
  fc.constantFrom('eu', 'us'),
);
/** A host of a rollout as the query sees it: a host without a result was expected (the others reported). */
const host = fc
  .record({ region, expected: fc.boolean(), state: fc.constantFrom(...ROLLOUT_HOST_STATES) })
  .map((h): RolloutHostRegion => (h.state === 'pending' || h.state === 'offline' ? { ...h, expected: true } : h));
const hosts = fc.array(host, { maxLength: 200 });

/** The rollout's totals by the rules of its summary query (libs/db rollout-progress.ts), host by host. */
function totals(hs: RolloutHostRegion[]) {
  const reported = (h: RolloutHostRegion) => ['applied', 'failed', 'superseded'].includes(h.state);
  return {
    expected: hs.filter((h) => h.expected).length,
    reported: hs.filter(reported).length,
    applied: hs.filter((h) => h.state === 'applied').length,
    failed: hs.filter((h) => h.state === 'failed').length,
    superseded: hs.filter((h) => h.state === 'superseded').length,
    pending: hs.filter((h) => h.state === 'pending').length,
    offline: hs.filter((h) => h.state === 'offline').length,
    joined: hs.filter((h) => reported(h) && !h.expected).length,
  };
}

test('property: the regions add up to the rollout totals', () => {
  fc.assert(fc.property(hosts, (hs) => assert.equal(sumRegions(rolloutRegions(hs)), totals(hs))));
});

test("property: each region's counts are the totals of its own hosts; hosts outside any region are the hub's", () => {
  fc.assert(
    fc.property(hosts, (hs) => {
      const regions = rolloutRegions(hs);
      const names = [...new Set(hs.map((h) => h.region ?? HUB_DOMAIN))];
      assert.equal(Object.keys(regions), names, 'every region with a host, in order of first appearance, and no other');
      for (const name of names) assert.equal(regions[name], totals(hs.filter((h) => (h.region ?? HUB_DOMAIN) === name)), name);
    }),
  );
});

test('property: grouped rows (hosts: n) count as n hosts alike', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(host, fc.integer({ min: 0, max: 20 })), { maxLength: 40 }), (groups) => {
      const grouped = groups.map(([h, n]) => ({ ...h, hosts: n }));
      const expanded = groups.flatMap(([h, n]) => Array.from({ length: n }, () => h));
      assert.equal(rolloutRegions(grouped), rolloutRegions(expanded));
    }),
  );
});

test('no hosts: no regions; a few hosts by hand', () => {
  assert.equal(rolloutRegions([]), {});
  assert.equal(
    rolloutRegions([
      { region: 'eu', expected: true, state: 'applied' },
      { region: 'eu', expected: true, state: 'pending' },
      { region: null, expected: false, state: 'failed' },
      { region: null, expected: true, state: 'offline', hosts: 2 },
    ]),
    {
      eu: { expected: 2, reported: 1, applied: 1, failed: 0, superseded: 0, pending: 1, offline: 0, joined: 0 },
      hub: { expected: 2, reported: 1, applied: 0, failed: 1, superseded: 0, pending: 0, offline: 2, joined: 1 },
    },
  );
});

test.run();
