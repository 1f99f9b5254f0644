import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WatchSlots } from '../src/http/watch-slots.ts';

test('property: never more than the limit open per identity; releases (even repeated) give back exactly one slot', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('open' as const), who: fc.constantFrom('a', 'b', 'c') }),
    fc.record({ kind: fc.constant('close' as const), index: fc.nat(20), twice: fc.boolean() }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 60 }), (limit, ops) => {
      const slots = new WatchSlots(limit);
      const held: Array<{ who: string; release: () => void }> = [];
      const model = new Map<string, number>();
      for (const o of ops) {
        if (o.kind === 'open') {
          const release = slots.tryAcquire(o.who);
          const n = model.get(o.who) ?? 0;
          assert.is(release !== null, n < limit, 'refused exactly at the limit');
          if (release) {
            held.push({ who: o.who, release });
            model.set(o.who, n + 1);
          }
        } else if (held.length > 0) {
          const [h] = held.splice(o.index % held.length, 1);
          h!.release();
          if (o.twice) h!.release();
          model.set(h!.who, (model.get(h!.who) ?? 1) - 1);
        }
        for (const who of ['a', 'b', 'c']) assert.is(slots.openFor(who), model.get(who) ?? 0);
      }
      assert.is(slots.total, held.length);
    }),
  );
});

test.run();
