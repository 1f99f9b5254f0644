import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { domainApi, hubSources, REGION_ROLE, regionStreamConfig, type StreamKey, streamConfig } from '../src/index.ts';

/** Nebula's streams in a region's domain (pure): mirrors of the hub's, or streams of their own the hub sources. */

const keys = Object.keys(REGION_ROLE) as StreamKey[];

test("APPS and GROUPS are mirrors of the hub's (no subjects of their own, direct get on, never refusing); RESULTS, HOSTS, EVENTS the hub's settings", () => {
  for (const key of keys) {
    const cfg = regionStreamConfig(key);
    const hub = streamConfig(key);
    assert.is(cfg.name, hub.name);
    if (REGION_ROLE[key] === 'mirror') {
      assert.equal(cfg.mirror, { name: hub.name, external: { api: '$JS.hub.API' } }, key);
      assert.is(cfg.subjects, undefined, key);
      assert.is(cfg.allow_direct, true, key);
      assert.is(cfg.discard, 'old', key);
      assert.is(cfg.max_msgs_per_subject, hub.max_msgs_per_subject, key);
    } else {
      assert.equal(cfg, hub, key);
    }
  }
  assert.equal(
    keys.filter((k) => REGION_ROLE[k] === 'mirror'),
    ['apps', 'groups'],
  );
});

test('the hub sources each region once, in a stable order, only for the streams regions publish into', () => {
  fc.assert(
    fc.property(fc.array(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), { maxLength: 6 }), fc.constantFrom(...keys), (regions, key) => {
      const sources = hubSources(key, regions);
      if (REGION_ROLE[key] === 'mirror') return assert.equal(sources, []);
      const unique = [...new Set(regions)].sort();
      assert.equal(
        sources.map((s) => s.external?.api),
        unique.map(domainApi),
      );
      for (const s of sources) assert.is(s.name, streamConfig(key).name);
      assert.equal(hubSources(key, [...regions].reverse()), sources, 'order of the list does not matter');
    }),
  );
});

test.run();
