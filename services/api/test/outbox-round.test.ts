import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareIds, type PendingRow, planRound } from '../src/db/outbox-round.ts';

// Which rows go out in one round of the relay: pure, so its safety rules are checked on any outbox.

const SUBJECTS = ['apps.a', 'apps.b', 'apps.c', 'apps.d', 'groups.g', 'groups.h'];
// Above 2^53: ids compare as bigints, not as floats or strings.
const BASE = 9_007_199_254_740_990n;

/** Pending rows with distinct ids, in any order, and the subjects backing off. */
const outbox = fc
  .record({
    subjects: fc.array(fc.constantFrom(...SUBJECTS), { maxLength: 60 }),
    gaps: fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 60, maxLength: 60 }),
    order: fc.array(fc.nat(), { minLength: 60, maxLength: 60 }),
    waiting: fc.subarray(SUBJECTS),
    maxSubjects: fc.integer({ min: 1, max: 7 }),
    rowsPerSubject: fc.integer({ min: 1, max: 12 }),
  })
  .map(({ subjects, gaps, order, waiting, maxSubjects, rowsPerSubject }) => {
    let id = BASE;
    const rows: PendingRow[] = subjects.map((subject, i) => {
      id += BigInt(gaps[i] ?? 1);
      return { id: id.toString(), subject };
    });
    // Shuffled: the plan must not depend on the order rows arrive in.
    const shuffled = rows.map((r, i) => ({ r, k: order[i] ?? 0 })).sort((x, y) => x.k - y.k || compareIds(x.r.id, y.r.id));
    return { rows, shuffled: shuffled.map((x) => x.r), waiting: new Set(waiting), limits: { maxSubjects, rowsPerSubject } };
  });

/** A subject's pending rows, oldest first. */
function ofSubject(rows: PendingRow[], subject: string): PendingRow[] {
  return rows.filter((r) => r.subject === subject).sort((a, b) => compareIds(a.id, b.id));
}

test('a chain is the oldest rows of its subject, in order, without a gap, up to rowsPerSubject', () => {
  fc.assert(
    fc.property(outbox, ({ rows, shuffled, waiting, limits }) => {
      for (const chain of planRound(shuffled, waiting, limits)) {
        const subject = chain[0]?.subject ?? '';
        assert.ok(chain.length > 0);
        assert.ok(
          chain.every((r) => r.subject === subject),
          'one subject per chain',
        );
        const all = ofSubject(rows, subject);
        assert.equal(
          chain.map((r) => r.id),
          all.slice(0, limits.rowsPerSubject).map((r) => r.id),
        );
      }
    }),
  );
});

test('no subject backing off, each subject once, at most maxSubjects, as many as there are subjects ready', () => {
  fc.assert(
    fc.property(outbox, ({ rows, shuffled, waiting, limits }) => {
      const plan = planRound(shuffled, waiting, limits);
      const subjects = plan.map((c) => c[0]?.subject ?? '');
      assert.is(new Set(subjects).size, subjects.length);
      assert.ok(subjects.every((s) => !waiting.has(s)));
      const ready = new Set(rows.filter((r) => !waiting.has(r.subject)).map((r) => r.subject));
      assert.is(plan.length, Math.min(limits.maxSubjects, ready.size));
    }),
  );
});

test('the subjects chosen are those whose oldest row is oldest, in that order', () => {
  fc.assert(
    fc.property(outbox, ({ rows, shuffled, waiting, limits }) => {
      const plan = planRound(shuffled, waiting, limits);
      const heads = plan.map((c) => c[0]?.id ?? '');
      assert.equal(heads, [...heads].sort(compareIds));
      const last = heads.at(-1);
      const chosen = new Set(plan.map((c) => c[0]?.subject));
      for (const subject of new Set(rows.map((r) => r.subject))) {
        if (chosen.has(subject) || waiting.has(subject) || last === undefined) continue;
        const head = ofSubject(rows, subject)[0];
        assert.ok(head && compareIds(head.id, last) > 0, `${subject} left out though its oldest row is older than a chosen one`);
      }
    }),
  );
});

test('the plan does not depend on the order the rows arrive in', () => {
  fc.assert(
    fc.property(outbox, ({ rows, shuffled, waiting, limits }) => {
      assert.equal(planRound(shuffled, waiting, limits), planRound(rows, waiting, limits));
    }),
  );
});

test('an example: two subjects per round, two rows each', () => {
  const rows = [
    { id: '7', subject: 'apps.b' },
    { id: '1', subject: 'apps.a' },
    { id: '10', subject: 'apps.c' },
    { id: '3', subject: 'apps.a' },
    { id: '2', subject: 'apps.b' },
    { id: '9', subject: 'apps.a' },
  ];
  assert.equal(
    planRound(rows, new Set(), { maxSubjects: 2, rowsPerSubject: 2 }).map((c) => c.map((r) => r.id)),
    [
      ['1', '3'],
      ['2', '7'],
    ],
  );
  assert.equal(
    planRound(rows, new Set(['apps.a']), { maxSubjects: 2, rowsPerSubject: 2 }).map((c) => c.map((r) => r.id)),
    [['2', '7'], ['10']],
  );
});

test.run();
