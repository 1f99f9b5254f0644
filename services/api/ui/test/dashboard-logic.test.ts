import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appliedOverTime } from '../src/lib/applied-over-time.ts';
import { cellAt, gridLayout, moveCell } from '../src/lib/grid-layout.ts';
import { configsByRevision, diffConfigs } from '../src/lib/revisions.ts';
import { validateConfigText } from '../src/lib/validate-config.ts';

/** The dashboard's decisions, pure: the grid's layout, the revisions' configs and diffs, the editor's check, the chart's points. */

test('the grid: every host has a cell on the canvas, cells stay in their bounds, a click finds the host drawn there', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 200, max: 2000 }), (count, width) => {
      const l = gridLayout(count, width);
      assert.ok(l.columns * l.rows >= count, 'room for all');
      assert.ok(l.width <= Math.max(width, l.pitch), 'no wider than given');
      assert.ok(l.cell > 0 && l.cell < l.pitch, 'a gap between cells');
      if (count > 0) {
        const i = count - 1;
        const x = (i % l.columns) * l.pitch + l.cell / 2;
        const y = Math.floor(i / l.columns) * l.pitch + l.cell / 2;
        assert.is(cellAt(l, count, x, y), i);
      }
      assert.is(cellAt(l, count, -1, 0), null);
    }),
  );
});

test('the grid: 10,000 hosts fit 1280 px in small cells; 3 hosts get big ones (with their icon)', () => {
  assert.ok(gridLayout(3, 1200).cell >= 16);
  const big = gridLayout(10_000, 1240);
  assert.ok(big.pitch >= 6 && big.pitch <= 8, `pitch ${big.pitch}`);
});

test('arrow keys never leave the grid', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 500 }),
      fc.nat(),
      fc.constantFrom('ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'x'),
      (count, start, key) => {
        const l = gridLayout(count, 400);
        const next = moveCell(l, count, start % count, key);
        assert.ok(next >= 0 && next < count);
      },
    ),
  );
});

const field = fc.constantFrom('docker_image', 'env_vars', 'running', 'labels', 'command');
const value = fc.oneof(fc.string(), fc.boolean(), fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 })));

test("configs rebuilt from the history: undoing each revision's changes gives the revision before it", () => {
  // A random sequence of configs; history says what each changed from the one before (as diffConfigs of the API).
  fc.assert(
    fc.property(
      // Configs reach the UI as JSON: plain objects (fast-check also makes null-prototype ones).
      fc.array(fc.dictionary(field, value), { minLength: 1, maxLength: 8 }).map((cs) => JSON.parse(JSON.stringify(cs)) as typeof cs),
      (configs) => {
        const revisions = configs
          .map((c, i) => {
            const before = i === 0 ? {} : (configs[i - 1] ?? {});
            const changes = [...new Set([...Object.keys(before), ...Object.keys(c)])]
              .filter((f) => JSON.stringify((before as Record<string, unknown>)[f]) !== JSON.stringify((c as Record<string, unknown>)[f]))
              .map((f) => ({ field: f, from: (before as Record<string, unknown>)[f], to: (c as Record<string, unknown>)[f] }));
            return { app_id: i + 1, changes };
          })
          .reverse();
        const current = configs[configs.length - 1] ?? {};
        const rebuilt = configsByRevision(current, revisions);
        configs.forEach((c, i) => {
          assert.equal(rebuilt.get(i + 1), { ...c }, `revision ${i + 1}`);
        });
      },
    ),
  );
});

test('a diff of two configs names exactly the fields that differ, and none of a config with itself', () => {
  fc.assert(
    fc.property(fc.dictionary(field, value), fc.dictionary(field, value), (a, b) => {
      assert.equal(diffConfigs(a, a), []);
      const named = diffConfigs(a, b).map((d) => d.field);
      for (const f of new Set([...Object.keys(a), ...Object.keys(b)])) {
        const differs = JSON.stringify((a as Record<string, unknown>)[f]) !== JSON.stringify((b as Record<string, unknown>)[f]);
        assert.is(named.includes(f), differs, f);
      }
    }),
  );
});

test('the editor checks with the API schema and names the field of each error', () => {
  assert.ok(validateConfigText('{"docker_image": "nginx:1"}').ok);
  const bad = validateConfigText('{"docker_image": "nginx:1", "log_max_files": 0, "nonsense": true}');
  assert.ok(!bad.ok);
  if (!bad.ok) assert.equal(bad.errors.map((e) => e.field).sort(), ['log_max_files', 'nonsense']);
  const notJson = validateConfigText('{');
  assert.ok(!notJson.ok && notJson.errors[0]?.field === '');
  assert.ok(!validateConfigText('[1]').ok);
  fc.assert(
    fc.property(fc.string(), (s) => {
      // Never throws, whatever is typed.
      validateConfigText(s);
    }),
  );
});

test('hosts applied over time: counts only applied hosts, never goes down, ends at their number', () => {
  const start = '2024-01-01T00:00:00.000Z';
  fc.assert(
    fc.property(
      fc.array(fc.record({ state: fc.constantFrom('applied', 'failed', 'pending'), ms: fc.integer({ min: 0, max: 100_000 }) }), { maxLength: 200 }),
      (hs) => {
        const hosts = hs.map((x) => ({ state: x.state, reported_at: x.state === 'pending' ? null : new Date(Date.parse(start) + x.ms).toISOString() }));
        const pts = appliedOverTime(start, hosts);
        for (let i = 1; i < pts.length; i++) {
          assert.ok((pts[i]?.t ?? 0) > (pts[i - 1]?.t ?? 0) || i === 1);
          assert.ok((pts[i]?.applied ?? 0) >= (pts[i - 1]?.applied ?? 0));
        }
        assert.is(pts[pts.length - 1]?.applied, hs.filter((x) => x.state === 'applied').length);
      },
    ),
  );
});

test.run();
