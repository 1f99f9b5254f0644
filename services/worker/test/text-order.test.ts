import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { byCodeUnit, naturalCompare } from '../src/text-order.ts';

/** Container names as the worker makes them: lowercase letters, digits, "-" and "_"... */
const name = fc.stringMatching(/^[a-z0-9-]{0,12}$/);
const sign = (n: number) => Math.sign(n);

test('natural order: the order of localeCompare("en", numeric) on container-like names, without ICU', () => {
  fc.assert(
    fc.property(name, name, (a, b) => {
      // Names equal but for leading zeros: ICU calls them equal, ours breaks the tie (a total order).
      if (a !== b && a.replace(/(^|\D)0+(?=\d)/g, '$1') === b.replace(/(^|\D)0+(?=\d)/g, '$1')) return true;
      return sign(naturalCompare(a, b)) === sign(a.localeCompare(b, 'en', { numeric: true }));
    }),
    { numRuns: 5000 },
  );
});

test('natural order is a total order: antisymmetric, transitive, zero only for equal names', () => {
  const any = fc.string({ maxLength: 10, unit: fc.constantFrom('a', 'B', '0', '1', '9', '-', '_', '.') });
  fc.assert(
    fc.property(any, any, any, (a, b, c) => {
      assert.is(sign(naturalCompare(a, b)), -sign(naturalCompare(b, a)));
      assert.is(naturalCompare(a, b) === 0, a === b);
      if (naturalCompare(a, b) <= 0 && naturalCompare(b, c) <= 0) assert.ok(naturalCompare(a, c) <= 0, `${a} <= ${b} <= ${c}`);
    }),
    { numRuns: 5000 },
  );
});

test('digit runs by value; letters without case first', () => {
  const sorted = ['web-10', 'web-2', 'Web-3', 'web-1', 'api-1', 'web-02'].sort(naturalCompare);
  assert.equal(sorted, ['api-1', 'web-1', 'web-02', 'web-2', 'Web-3', 'web-10']);
});

test('code-unit order is the order of ISO timestamps and hex ids', () => {
  fc.assert(
    fc.property(
      fc.date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }),
      fc.date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }),
      (x, y) => {
        return sign(byCodeUnit(x.toISOString(), y.toISOString())) === sign(x.getTime() - y.getTime());
      },
    ),
  );
});

test.run();
