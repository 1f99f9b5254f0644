import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Batcher } from '../src/index.ts';

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

test('a batch that is not full is written after maxWaitMs', async () => {
  const written: number[][] = [];
  let done!: () => void;
  const wrote = new Promise<void>((r) => (done = r));
  const b = new Batcher<number>({
    maxSize: 100,
    maxWaitMs: 10,
    write: async (xs) => {
      written.push(xs);
      done();
    },
  });
  await b.add(1);
  await b.add(2);
  assert.equal(written, []);
  await wrote;
  assert.equal(written, [[1, 2]]);
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

test.run();
