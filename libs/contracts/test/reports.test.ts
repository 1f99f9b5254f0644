import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseReportQuery, REPORT_TIME_FILTERS, reportIdOfOid, reportOid } from '../src/index.ts';

const q = (s: string) => parseReportQuery(new URLSearchParams(s));

test('no parameters: the defaults (page of 10, eq)', () => {
  assert.equal(q(''), { ok: true, value: { page_size: 10, report_creation_time_filter: 'eq' } });
});

test('every parameter, as the Python SDK sends them', () => {
  const r = q(`page_size=3&last_id=${reportOid(41n)}&hostname=h-1&device_group=g&report_creation_time=1700000000&report_creation_time_filter=gte&updated=True`);
  assert.equal(r, {
    ok: true,
    value: {
      page_size: 3,
      last_id: '000000000000000000000029',
      hostname: 'h-1',
      device_group: 'g',
      report_creation_time: 1_700_000_000,
      report_creation_time_filter: 'gte',
      updated: true,
    },
  });
  for (const [text, value] of [
    ['True', true],
    ['true', true],
    ['False', false],
    ['false', false],
  ] as const)
    assert.equal(q(`updated=${text}`), { ok: true, value: { page_size: 10, report_creation_time_filter: 'eq', updated: value } });
});

test('a bad parameter is named: page_size, last_id, time, filter, updated, unknown, repeated', () => {
  const bad = (s: string, name: string) => {
    const r = q(s);
    assert.is(r.ok, false, s);
    if (!r.ok) assert.equal(Object.keys(r.errors), [name], s);
  };
  bad('page_size=0', 'page_size');
  bad('page_size=1001', 'page_size');
  bad('page_size=ten', 'page_size');
  bad('page_size=-1', 'page_size');
  bad('last_id=xyz', 'last_id');
  bad('last_id=5f1d7b5e2c9a4b0012345678aa', 'last_id');
  bad(`last_id=${'f'.repeat(24)}`, 'last_id');
  bad('report_creation_time=soon', 'report_creation_time');
  bad('report_creation_time=1.5', 'report_creation_time');
  bad('report_creation_time_filter=between', 'report_creation_time_filter');
  bad('updated=yes', 'updated');
  bad('updated=1', 'updated');
  bad('hostname=', 'hostname');
  bad('host=h1', 'host');
  bad('page_size=1&page_size=2', 'page_size');
});

test('property: the string form of an id is 24 hex digits, sorts like the number, and parses back', () => {
  const id = fc.bigInt({ min: 1n, max: (1n << 63n) - 1n });
  fc.assert(
    fc.property(id, id, (a, b) => {
      const oa = reportOid(a);
      assert.is(oa.length, 24);
      assert.is(reportIdOfOid(oa), a.toString());
      assert.is(oa < reportOid(b), a < b);
      const r = q(`last_id=${oa.toUpperCase()}`);
      assert.ok(r.ok && r.value.last_id?.toLowerCase() === oa);
    }),
  );
});

test('property: any query string parses to a valid query or to errors that name only parameters it has', () => {
  const names = fc.constantFrom('page_size', 'last_id', 'hostname', 'device_group', 'report_creation_time', 'report_creation_time_filter', 'updated', 'other');
  const values = fc.oneof(
    fc.string(),
    fc.integer({ min: -5, max: 5000 }).map(String),
    fc.constantFrom(...REPORT_TIME_FILTERS, 'True', 'False', 'true', 'false'),
    fc.bigInt({ min: 0n, max: 1n << 64n }).map((n) => n.toString(16).padStart(24, '0')),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(names, values), { maxLength: 6 }), (pairs) => {
      const params = new URLSearchParams(pairs);
      const r = parseReportQuery(params);
      if (r.ok) {
        assert.ok(r.value.page_size >= 1 && r.value.page_size <= 1000);
        assert.ok((REPORT_TIME_FILTERS as readonly string[]).includes(r.value.report_creation_time_filter));
        for (const k of new Set(params.keys())) assert.is(params.getAll(k).length, 1);
      } else {
        assert.ok(Object.keys(r.errors).length > 0);
        for (const k of Object.keys(r.errors)) assert.ok(params.has(k), `${k} is a parameter given`);
      }
    }),
  );
});

test.run();
