import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Batcher } from '../src/index.ts';

const macrotask = () => new Promise((r) => setTimeout(r, 0));

/** A write that ends only when told: `inFlight` says what it holds, `release()` ends it. */
function gatedWrites() {
  const written: number[][] = [];
  let inFlight: number[] | null = null;
  let active = 0;
  let end: (() => void) | null = null;
  return {
    written,
    get inFlight() {
      return inFlight;
    },
    write: (xs: number[]) => {
      active++;
      assert.is(active, 1, 'never two writes at once');
      inFlight = xs;
      return new Promise<void>((r) => {
        end = () => {
          written.push(xs);
          inFlight = null;
          active--;
          r();
        };
      });
    },
    release() {
      const e = end;
      end = null;
      e?.();
    },
  };
}

test('a full batch is written at once, and add() waits for it', async () => {
  const written: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const b = new Batcher<number>({
    maxSize: 3,
    maxWaitMs: 60_000,
    write: async (xs) => {
      await gate;
      written.push(xs);
    },
  });
  await b.add(1);
  await b.add(2);
  let third = false;
  const p = b.add(3).then(() => (third = true));
  await new Promise((r) => setImmediate(r));
  assert.is(third, false, 'the caller is held while the full batch is written');
  release();
  await p;
  assert.equal(written, [[1, 2, 3]]);
  assert.is(b.buffered, 0);
});

test('the first items, added in one turn, are written together in the next, without waiting maxWaitMs; the next write waits for it', async () => {
  const w = gatedWrites();
  const b = new Batcher<number>({ maxSize: 100, maxWaitMs: 60_000, write: w.write });
  await b.add(1);
  await b.add(2);
  assert.equal(w.inFlight, null, 'not in the same turn');
  await macrotask();
  assert.equal(w.inFlight, [1, 2]);
  w.release();
  await b.add(3);
  for (let i = 0; i < 5; i++) await macrotask();
  assert.equal(w.inFlight, null, 'a write started less than maxWaitMs ago: the next waits');
  assert.is(b.buffered, 1);
  const flushed = b.flush();
  await macrotask();
  w.release();
  await flushed;
  assert.equal(w.written, [[1, 2], [3]]);
});

test('writes run one at a time in order; flush() waits for all of them; a throwing write does not stop later ones', async () => {
  const log: string[] = [];
  let active = 0;
  const b = new Batcher<number>({
    maxSize: 2,
    maxWaitMs: 1,
    write: async (xs) => {
      active++;
      assert.is(active, 1, 'never two writes at once');
      await new Promise((r) => setTimeout(r, 5));
      log.push(xs.join(','));
      active--;
      if (xs.includes(3)) throw new Error('breaks the contract');
    },
  });
  const adds = [1, 2, 3, 4, 5].map((x) => b.add(x));
  await Promise.all(adds);
  await b.flush();
  assert.equal(log, ['1,2', '3,4', '5']);
  await b.add(6);
  await b.flush();
  assert.equal(log.at(-1), '6');
});

test('maxWaitMs 0: one item is written in the next turn; what arrives during a write is written, together, as soon as it ends', async () => {
  const w = gatedWrites();
  const b = new Batcher<number>({ maxSize: 100, maxWaitMs: 0, write: w.write });
  await b.add(1);
  await macrotask();
  assert.equal(w.inFlight, [1], 'the first item is written without waiting for others');
  await b.add(2);
  await macrotask();
  await b.add(3);
  await macrotask();
  assert.equal(w.inFlight, [1], 'no second write while one is in flight');
  assert.is(b.buffered, 2);
  w.release();
  await macrotask();
  assert.equal(w.written, [[1]]);
  assert.equal(w.inFlight, [2, 3], 'what arrived during the write, in one batch, at once');
  w.release();
  await b.flush();
  assert.equal(w.written, [[1], [2, 3]]);
});

test('any interleaving of adds, turns and ends of writes: every item written once, in order, in batches of at most maxSize, one write at a time; a write that ends with items waiting is followed by theirs at once', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.array(fc.constantFrom('add', 'add', 'turn', 'end'), { maxLength: 60 }), async (maxSize, steps) => {
      const w = gatedWrites();
      const b = new Batcher<number>({ maxSize, maxWaitMs: 0, write: w.write });
      let next = 0;
      const pending: Promise<void>[] = [];
      for (const step of steps) {
        if (step === 'add') pending.push(b.add(next++));
        else if (step === 'turn') await macrotask();
        else {
          const waiting = w.inFlight === null ? 0 : b.buffered;
          w.release();
          await macrotask();
          if (waiting > 0) assert.is(w.inFlight?.length, Math.min(waiting, maxSize), 'the waiting items are written as the write ends');
        }
        for (const xs of [...w.written, ...(w.inFlight ? [w.inFlight] : [])]) assert.ok(xs.length >= 1 && xs.length <= maxSize, `batch of ${xs.length}`);
      }
      const done = b.flush();
      while (w.inFlight !== null || b.buffered > 0) {
        w.release();
        await macrotask();
      }
      await done;
      await Promise.all(pending);
      assert.equal(
        w.written.flat(),
        Array.from({ length: next }, (_, i) => i),
      );
    }),
    { numRuns: 200 },
  );
});

test.run();
