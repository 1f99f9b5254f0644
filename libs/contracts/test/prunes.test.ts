import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PRUNE_LIST_LIMIT, parsePruneQuery } from '../src/index.ts';

/** The query string of GET /api/v2/prunes: what is valid comes through as given; anything else names its parameter. */
const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,20}$/);

test('valid queries come through as given (limit defaulted)', () => {
  fc.assert(
    fc.property(
      fc.record(
        { device_group: name, prune_id: fc.integer({ min: 1, max: 1e9 - 1 }), host: name, limit: fc.integer({ min: 1, max: PRUNE_LIST_LIMIT.max }) },
        { requiredKeys: [] },
      ),
      (q) => {
        const r = parsePruneQuery(new URLSearchParams(Object.entries(q).map(([k, v]): [string, string] => [k, String(v)])));
        assert.equal(r, { ok: true, value: { limit: PRUNE_LIST_LIMIT.default, ...q } });
      },
    ),
  );
});

test('an unknown, repeated or malformed parameter is an error naming it, never a query', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(
        'prune_id=0',
        'prune_id=-1',
        'prune_id=1.5',
        'prune_id=',
        'limit=0',
        `limit=${PRUNE_LIST_LIMIT.max + 1}`,
        'host=a&host=b',
        'device_group=a.b',
        'device_group=*',
        'x=1',
      ),
      fc.constantFrom('', '&device_group=g', '&host=h1'),
      (bad, ok) => {
        const r = parsePruneQuery(new URLSearchParams(`${bad}${ok}`));
        assert.is(r.ok, false);
        if (!r.ok) assert.ok(bad.split('=')[0]! in r.errors, `${bad}: ${JSON.stringify(r.errors)}`);
      },
    ),
  );
});

test.run();
