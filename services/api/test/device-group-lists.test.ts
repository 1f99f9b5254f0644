import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { planGroupLists } from '../src/device-group-lists.ts';

/** The pure planner of a group's lists: replace and patch, adds and removes. */
const test = suite('device-group-lists');
const names = fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { maxLength: 8 });
const lists = fc.record({ apps: names.map((n) => [...new Set(n)]), cron_jobs: names.map((n) => [...new Set(n)]) });

test('never a name twice; removed names are gone; added ones are there unless removed', () => {
  fc.assert(
    fc.property(lists, names, names, names, (current, apps, add, remove) => {
      const next = planGroupLists(current, { kind: 'patch', apps, add_apps: add, remove_apps: remove });
      assert.is(new Set(next.apps).size, next.apps.length);
      for (const r of remove) assert.not.ok(next.apps.includes(r));
      for (const a of add) if (!remove.includes(a)) assert.ok(next.apps.includes(a));
      assert.equal(next.cron_jobs, current.cron_jobs, 'a list not named stays as it was');
    }),
  );
});

test('replace sets both lists, in the order given; patching with the same lists is a no-op', () => {
  fc.assert(
    fc.property(lists, names, names, (current, apps, jobs) => {
      const next = planGroupLists(current, { kind: 'replace', apps, cron_jobs: jobs });
      assert.equal(next, { apps: [...new Set(apps)], cron_jobs: [...new Set(jobs)] });
      assert.equal(planGroupLists(next, { kind: 'patch' }), next);
    }),
  );
});

test.run();
