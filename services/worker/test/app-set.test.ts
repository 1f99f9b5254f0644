import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appSetChange, changesApps } from '../src/app-set.ts';

/** The apps a group message makes a host serve: property tests of the pure set diff. */

const names = fc.uniqueArray(fc.constantFrom<string>('a', 'b', 'c', 'd', 'e', 'f'), { maxLength: 6 });
const inputArb = fc.record({ fixed: names, served: names, group: names }).map((i) => ({
  ...i,
  // What a host serves always includes APP_NAME's apps.
  served: [...new Set([...i.fixed, ...i.served])],
}));

test('APP_NAME and the group move an example host', () => {
  assert.equal(appSetChange({ fixed: ['web'], served: ['web', 'a'], group: ['b', 'web'] }), { next: ['b', 'web'], added: ['b'], removed: ['a'] });
  assert.equal(appSetChange({ fixed: [], served: ['a'], group: [] }), { next: [], added: [], removed: ['a'] }, 'a deleted group: its apps go');
});

test('properties: APP_NAME is kept whatever the group says; next = served - removed + added; nothing added twice; the diff of the result is empty', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const c = appSetChange(input);
      for (const f of input.fixed) assert.ok(c.next.includes(f), `${f} of APP_NAME kept`);
      for (const r of c.removed) assert.not.ok(input.fixed.includes(r), `${r} of APP_NAME never removed`);
      for (const g of input.group) assert.ok(c.next.includes(g), `${g} of the group served`);
      assert.equal(new Set(c.next).size, c.next.length, 'each app once');
      for (const a of c.added) assert.not.ok(input.served.includes(a), 'an added app was not served');
      for (const r of c.removed) assert.ok(input.served.includes(r), 'a removed app was served');
      const after = [...input.served.filter((a) => !c.removed.includes(a)), ...c.added].sort();
      assert.equal(after, [...c.next].sort(), 'served - removed + added = next');
      const again = appSetChange({ ...input, served: c.next });
      assert.not.ok(changesApps(again), 'converging twice changes nothing the second time');
      assert.equal(again.next, c.next);
    }),
  );
});

test.run();
