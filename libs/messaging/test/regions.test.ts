import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HUB_DOMAIN, parseRegions, REGION_NAME, RegionsConfigError } from '../src/index.ts';

/** NATS_REGIONS: `name=url` entries, comma-separated; a bad entry is refused by name. */

const regionName = fc.stringMatching(REGION_NAME).filter((n) => n !== HUB_DOMAIN);
const server = fc
  .tuple(fc.constantFrom('nats', 'tls'), fc.domain(), fc.integer({ min: 1, max: 65_535 }))
  .map(([scheme, host, port]) => `${scheme}://${host}:${port}`);

function refused(text: string, entry: string, words: RegExp): void {
  try {
    parseRegions(text);
    assert.unreachable(`accepted ${text}`);
  } catch (e) {
    assert.instance(e, RegionsConfigError);
    assert.is((e as RegionsConfigError).entry, entry);
    assert.ok((e as Error).message.includes(`"${entry}"`), (e as Error).message);
    assert.match((e as Error).message, words);
  }
}

test('the example of the docs', () => {
  assert.equal(parseRegions('eu=nats://10.0.0.2:4222,eu=nats://10.0.0.3:4222,us=tls://us.example:4222'), [
    { name: 'eu', servers: ['nats://10.0.0.2:4222', 'nats://10.0.0.3:4222'] },
    { name: 'us', servers: ['tls://us.example:4222'] },
  ]);
});

test('empty, blank or undefined: no regions; blanks around entries and empty entries are ignored', () => {
  assert.equal(parseRegions(undefined), []);
  assert.equal(parseRegions(''), []);
  assert.equal(parseRegions(' , ,'), []);
  assert.equal(parseRegions(' eu = nats://a:4222 ,, us=tls://b:4222 '), [
    { name: 'eu', servers: ['nats://a:4222'] },
    { name: 'us', servers: ['tls://b:4222'] },
  ]);
});

test('bad entries are refused, naming the entry', () => {
  refused('eu=nats://a:4222,hub=nats://b:4222', 'hub=nats://b:4222', /hub's own/);
  refused('EU=nats://a:4222', 'EU=nats://a:4222', /region name/);
  refused('1eu=nats://a:4222', '1eu=nats://a:4222', /region name/);
  refused(`${'a'.repeat(32)}=nats://a:4222`, `${'a'.repeat(32)}=nats://a:4222`, /region name/);
  refused('eu.west=nats://a:4222', 'eu.west=nats://a:4222', /region name/);
  refused('eu=http://a:4222', 'eu=http://a:4222', /nats:\/\/ or tls:\/\//);
  refused('eu=a:4222', 'eu=a:4222', /nats:\/\/ or tls:\/\//);
  refused('eu=', 'eu=', /nats:\/\/ or tls:\/\//);
  refused('nats://a:4222', 'nats://a:4222', /<region>=<url>/);
  refused('=nats://a:4222', '=nats://a:4222', /region name/);
  refused('eu=nats://me:secret@a:4222', 'eu=nats://***@a:4222', /no user or password/);
});

test('property: every server of every entry is kept once, under its name, names in order of first appearance', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(regionName, server), { maxLength: 30 }), (entries) => {
      const regions = parseRegions(entries.map(([n, s]) => `${n}=${s}`).join(','));
      assert.equal(
        regions.map((r) => r.name),
        [...new Set(entries.map(([n]) => n))],
      );
      for (const r of regions) {
        assert.equal(r.servers, [...new Set(entries.filter(([n]) => n === r.name).map(([, s]) => s))]);
        assert.ok(r.servers.length > 0);
      }
    }),
  );
});

test('property: one bad entry anywhere refuses the whole list, naming it', () => {
  const bad = fc.oneof(
    server.map((s) => `hub=${s}`),
    fc.tuple(regionName, fc.domain()).map(([n, h]) => `${n}=https://${h}:4222`),
    fc
      .tuple(
        fc.string({ minLength: 1, maxLength: 40 }).filter((n) => !REGION_NAME.test(n.trim()) && !/[,=@]/.test(n) && n.trim() !== ''),
        server,
      )
      .map(([n, s]) => `${n.trim()}=${s}`),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(regionName, server), { maxLength: 5 }), bad, fc.nat(), (good, entry, at) => {
      const list = good.map(([n, s]) => `${n}=${s}`);
      list.splice(at % (list.length + 1), 0, entry);
      refused(list.join(','), entry, /./);
    }),
  );
});

test.run();
