import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { imagesToRemove, noteImage } from '../src/planner/image-gc.ts';

/** Which images go after an apply: property tests of the pure choice. */

const ids = ['sha256:a', 'sha256:b', 'sha256:c', 'sha256:d', 'sha256:e', 'sha256:f'];
const historyArb = fc.array(fc.constantFrom(...ids), { maxLength: 8 }).map((seen) => seen.reduce<string[]>((h, id) => noteImage(h, id), []));
const inputArb = fc.record({
  local: fc.uniqueArray(fc.record({ id: fc.constantFrom(...ids, 'sha256:foreign'), inUse: fc.boolean() }), { selector: (i) => i.id }),
  apps: fc.array(historyArb, { maxLength: 3 }),
  protect: fc.array(fc.constantFrom(...ids), { maxLength: 2 }),
});

test('an app on its third image: the first goes, the current and the previous stay', () => {
  let h: string[] = [];
  for (const id of ['sha256:a', 'sha256:b', 'sha256:c']) h = noteImage(h, id);
  const local = ['sha256:a', 'sha256:b', 'sha256:c', 'sha256:x'].map((id) => ({ id, inUse: id === 'sha256:c' }));
  assert.equal(imagesToRemove({ local, apps: [h] }), ['sha256:a']);
  // Rolled back to a (pulled again): a is current, c (what ran just before) previous, b goes.
  h = noteImage(h, 'sha256:a');
  assert.equal(h, ['sha256:b', 'sha256:c', 'sha256:a']);
  assert.equal(imagesToRemove({ local: local.map((i) => ({ ...i, inUse: i.id === 'sha256:a' })), apps: [h] }), ['sha256:b']);
  assert.equal(imagesToRemove({ local: local.map((i) => ({ ...i, inUse: i.id === 'sha256:b' })), apps: [h] }), [], 'b is still used by a container');
  assert.equal(imagesToRemove({ local, apps: [h, ['sha256:b']] }), [], 'b is the current image of another app');
});

test('properties: never an image in use, never the current or previous of any app, never one not seen used, never one protected', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const out = imagesToRemove(input);
      const kept = new Set(input.apps.flatMap((h) => h.slice(-2)));
      const seen = new Set(input.apps.flat());
      for (const id of out) {
        const img = input.local.find((i) => i.id === id);
        assert.ok(img !== undefined, 'only local images');
        assert.not.ok(img.inUse, 'never one a container uses');
        assert.not.ok(kept.has(id), 'never the current or previous image of an app');
        assert.ok(seen.has(id), 'only images an app was seen using');
        assert.not.ok(input.protect.includes(id), 'never a protected image');
      }
      assert.equal(out, [...new Set(out)].sort(), 'each once');
    }),
  );
});

test('property: everything else that an app used before its previous image goes', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const out = new Set(imagesToRemove(input));
      const kept = new Set([...input.apps.flatMap((h) => h.slice(-2)), ...input.protect]);
      for (const img of input.local) {
        const old = input.apps.some((h) => h.slice(0, -2).includes(img.id));
        if (old && !img.inUse && !kept.has(img.id)) assert.ok(out.has(img.id), `${img.id} should go`);
      }
    }),
  );
});

test.run();
