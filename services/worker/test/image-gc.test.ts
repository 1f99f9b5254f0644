import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { imagesToPrune, imagesToRemove, noteImage, type SeenImage } from '../src/planner/image-gc.ts';

/** Which images go after an apply: property tests of the pure choice. */

const ids = ['sha256:a', 'sha256:b', 'sha256:c', 'sha256:d', 'sha256:e'];
const refs = ['app:1', 'app:2', 'app:3', 'base:latest'];
const seenArb = fc.record({ id: fc.constantFrom(...ids), ref: fc.constantFrom(...refs) });
const historyArb = fc.array(seenArb, { maxLength: 8 }).map((seen) => seen.reduce<SeenImage[]>((h, s) => noteImage(h, s), []));
const inputArb = fc.record({
  local: fc.uniqueArray(
    fc.record({
      id: fc.constantFrom(...ids, 'sha256:foreign'),
      tags: fc.uniqueArray(fc.constantFrom(...refs, 'other:1'), { maxLength: 2 }),
      inUse: fc.boolean(),
    }),
    { selector: (i) => i.id },
  ),
  apps: fc.array(historyArb, { maxLength: 3 }),
  protect: fc.array(fc.constantFrom(...ids), { maxLength: 2 }),
});

const seen = (...list: Array<[string, string]>) => list.reduce<SeenImage[]>((h, [id, ref]) => noteImage(h, { id, ref }), []);

test('an app on its third image: the first goes, the current and the previous stay', () => {
  let h = seen(['sha256:a', 'app:1'], ['sha256:b', 'app:2'], ['sha256:c', 'app:3']);
  const local = [
    { id: 'sha256:a', tags: ['app:1'], inUse: false },
    { id: 'sha256:b', tags: ['app:2'], inUse: false },
    { id: 'sha256:c', tags: ['app:3'], inUse: true },
    { id: 'sha256:x', tags: ['x:1'], inUse: false },
  ];
  assert.equal(imagesToRemove({ local, apps: [h] }), [{ id: 'sha256:a', refs: ['app:1'] }]);
  // Rolled back to app:1: a is current, c (what ran just before) previous, b goes.
  h = noteImage(h, { id: 'sha256:a', ref: 'app:1' });
  assert.equal(imagesToRemove({ local, apps: [h] }), [{ id: 'sha256:b', refs: ['app:2'] }]);
  assert.equal(imagesToRemove({ local: local.map((i) => ({ ...i, inUse: i.id === 'sha256:b' })), apps: [h] }), [], 'b is used by a container');
  assert.equal(imagesToRemove({ local, apps: [h, seen(['sha256:b', 'app:2'])] }), [], 'b is the current image of another app');
});

test('a tag pushed again leaves the old image without a tag: it goes by id; an image also tagged otherwise keeps that tag', () => {
  const h = seen(['sha256:a', 'app:1'], ['sha256:b', 'app:1'], ['sha256:c', 'app:1']);
  assert.equal(imagesToRemove({ local: [{ id: 'sha256:a', tags: [], inUse: false }], apps: [h] }), [{ id: 'sha256:a', refs: ['sha256:a'] }]);
  assert.equal(imagesToRemove({ local: [{ id: 'sha256:a', tags: ['base:latest'], inUse: false }], apps: [h] }), [], 'not a tag the app used');
  const h2 = seen(['sha256:a', 'app:1'], ['sha256:b', 'app:2'], ['sha256:c', 'app:3']);
  assert.equal(imagesToRemove({ local: [{ id: 'sha256:a', tags: ['app:1', 'base:latest'], inUse: false }], apps: [h2] }), [
    { id: 'sha256:a', refs: ['app:1'] },
  ]);
});

test('properties: never an image in use, the current or previous of an app, a protected one, one not seen used, nor a tag no app used', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const out = imagesToRemove(input);
      const kept = new Set(input.apps.flatMap((h) => h.slice(-2).map((s) => s.id)));
      const used = new Set(input.apps.flatMap((h) => h.map((s) => `${s.id} ${s.ref}`)));
      for (const r of out) {
        const img = input.local.find((i) => i.id === r.id);
        assert.ok(img !== undefined, 'only local images');
        assert.not.ok(img.inUse, 'never one a container uses');
        assert.not.ok(kept.has(r.id), 'never the current or previous image of an app');
        assert.ok(
          input.apps.some((h) => h.some((s) => s.id === r.id)),
          'only images an app was seen using',
        );
        assert.not.ok(input.protect.includes(r.id), 'never a protected image');
        assert.ok(r.refs.length > 0);
        for (const ref of r.refs) {
          if (ref === r.id) assert.equal(img.tags, [], 'by id only when it has no tag');
          else assert.ok(img.tags.includes(ref) && used.has(`${r.id} ${ref}`), `${ref}: a tag of the image that an app used for it`);
        }
      }
      assert.equal(
        out.map((r) => r.id),
        [...new Set(out.map((r) => r.id))].sort(),
        'each once',
      );
    }),
  );
});

test('property: an old untagged image nothing uses or keeps always goes', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const out = new Set(imagesToRemove(input).map((r) => r.id));
      const kept = new Set([...input.apps.flatMap((h) => h.slice(-2).map((s) => s.id)), ...input.protect]);
      for (const img of input.local) {
        const old = input.apps.some((h) => h.slice(0, -2).some((s) => s.id === img.id));
        if (old && !img.inUse && !kept.has(img.id) && img.tags.length === 0) assert.ok(out.has(img.id), `${img.id} should go`);
      }
    }),
  );
});

test('prune: every unused image goes, ours or not, dangling by id, tagged by all its tags; the current and previous of each app, and protected ones, stay', () => {
  const h = seen(['sha256:a', 'app:1'], ['sha256:b', 'app:2'], ['sha256:c', 'app:3']);
  const local = [
    { id: 'sha256:a', tags: ['app:1'], inUse: false },
    { id: 'sha256:b', tags: ['app:2'], inUse: false },
    { id: 'sha256:c', tags: ['app:3'], inUse: false },
    { id: 'sha256:x', tags: ['x:1', 'x:latest'], inUse: false },
    { id: 'sha256:y', tags: [], inUse: false },
    { id: 'sha256:z', tags: ['z:1'], inUse: true },
    { id: 'sha256:p', tags: ['p:1'], inUse: false },
  ];
  assert.equal(imagesToPrune({ local, apps: [h], protect: ['sha256:p'] }), [
    { id: 'sha256:a', refs: ['app:1'] },
    { id: 'sha256:x', refs: ['x:1', 'x:latest'] },
    { id: 'sha256:y', refs: ['sha256:y'] },
  ]);
});

test('prune properties: never an image in use, the current or previous of an app, or a protected one; every other image goes, by all its tags or by id', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const out = imagesToPrune(input);
      const kept = new Set([...input.apps.flatMap((h) => h.slice(-2).map((s) => s.id)), ...input.protect]);
      const ids = out.map((r) => r.id);
      assert.equal(ids, [...new Set(ids)].sort(), 'each once, in order');
      for (const img of input.local) {
        const r = out.find((o) => o.id === img.id);
        if (img.inUse || kept.has(img.id)) {
          assert.equal(r, undefined, `${img.id} stays`);
          continue;
        }
        assert.ok(r, `${img.id} goes`);
        assert.equal(r.refs, img.tags.length === 0 ? [img.id] : [...img.tags].sort());
      }
      // Everything imagesToRemove would remove, a prune removes too.
      for (const r of imagesToRemove(input)) assert.ok(ids.includes(r.id));
    }),
  );
});

test.run();
