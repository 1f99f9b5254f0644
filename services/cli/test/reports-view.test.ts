import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/command-line.ts';
import { UsageError } from '../src/errors.ts';
import { bytes, percent } from '../src/format.ts';
import { parseReportTime, reportQueryOf } from '../src/report-flags.ts';
import { usageView } from '../src/usage-view.ts';

/** `nebula hosts get`'s usage lines and `nebula reports list`'s flags, without an API. */

const sample = {
  gathered_at: '2026-12-05T10:00:00.000Z',
  cpu: { cores: 4, used_percent: 37.5, load_1m: 1.2 },
  memory: { used_bytes: 3 * 1024 ** 3, total_bytes: 8 * 1024 ** 3 },
  disk: { path: '/var/lib/docker', used_bytes: 20 * 1024 ** 3, total_bytes: 80 * 1024 ** 3 },
  containers: [
    { id: 'a', name: 'web-1', app: 'web', cpu_percent: 12.25, memory_bytes: 300 * 1024 ** 2, memory_limit_bytes: 512 * 1024 ** 2 },
    { id: 'b', name: 'web-2', app: 'web', cpu_percent: null, memory_bytes: null, memory_limit_bytes: null },
  ],
};

test('usage: host lines, then a row per container; unknown figures as "-"', () => {
  const text = usageView(sample, Date.parse('2026-12-05T10:00:30.000Z'));
  assert.match(text, 'usage gathered:  2026-12-05T10:00:00.000Z (30s ago)');
  assert.match(text, 'cpu:             37.5% of 4 cores (load 1.2)');
  assert.match(text, 'memory:          3GiB of 8GiB (37.5%)');
  assert.match(text, 'disk:            20GiB of 80GiB (25%) at /var/lib/docker');
  const lines = text.split('\n');
  assert.equal(lines.slice(-3), ['CONTAINER  APP  CPU    MEMORY  LIMIT', 'web-1      web  12.3%  300MiB  512MiB', 'web-2      web  -      -       -']);
  assert.match(usageView({ ...sample, disk: null, containers: [] }), 'disk:            - (the engine data root is not readable by the worker)');
});

test('bytes and percent', () => {
  assert.is(bytes(512), '512B');
  assert.is(bytes(1536), '1.5KiB');
  assert.is(bytes(null), '-');
  assert.is(percent(0), '0%');
  assert.is(percent(undefined), '-');
});

test('reports list flags: every filter, as reports.list takes them', () => {
  const p = parseCommandLine([
    'reports',
    'list',
    '--host',
    'h1',
    '--device-group',
    'g',
    '--time',
    '2026-12-05T10:00:00Z',
    '--time-filter',
    'gte',
    '--updated',
    'false',
    '--limit',
    '50',
    '--after',
    '00000000000000000000002a',
  ]);
  assert.ok(p !== 'help');
  assert.equal(reportQueryOf(p.values), {
    page_size: 50,
    last_id: '00000000000000000000002a',
    hostname: 'h1',
    device_group: 'g',
    report_creation_time: Date.parse('2026-12-05T10:00:00Z') / 1000,
    report_creation_time_filter: 'gte',
    updated: false,
  });
  assert.is(parseReportTime('1800000000'), 1_800_000_000);
});

test('reports list: bad flags are usage errors before anything is sent', () => {
  for (const argv of [
    ['--limit', '0'],
    ['--limit', '1001'],
    ['--time-filter', 'gt'],
    ['--time', 'soon'],
    ['--time', '1', '--time-filter', 'around'],
    ['--updated', 'yes'],
    ['--device-group', 'a', '--device-group', 'b'],
    ['--status', 'online'],
  ]) {
    assert.throws(
      () => parseCommandLine(['reports', 'list', ...argv]),
      (e: unknown) => e instanceof UsageError,
      argv.join(' '),
    );
  }
});

test.run();
