import type { RolloutProgress } from '@nebula/client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bar, ProgressView } from '../src/progress-view.ts';
import { progress } from './progress-fixture.ts';

/** The live view's rendering, without an API: bar line rewritten in place, each failure printed once. */

function capture() {
  const chunks: string[] = [];
  return { out: { write: (t: string) => void chunks.push(t) }, text: () => chunks.join('') };
}

test('bar: filled in proportion, full for a rollout that expects no host', () => {
  assert.is(bar(1, 4, 8), '[##------]');
  assert.is(bar(4, 4, 8), '[########]');
  assert.is(bar(0, 0, 4), '[####]');
});

test('terminal: one line redrawn; failures above it, each once; a summary at the end', () => {
  const c = capture();
  const v = new ProgressView(c.out, 'tty');
  const fail = { host: 'h3', error: 'no such image', at: '2026-01-01T00:00:01.000Z' };
  v.update(progress({ reported: 1, applied: 1, pending: 3 }));
  v.update(progress({ reported: 2, applied: 1, failed: 1, pending: 2, failures: [fail] }));
  v.update(progress({ reported: 4, applied: 3, failed: 1, pending: 0, complete: true, failures: [fail] }));
  v.finish(progress({ reported: 4, applied: 3, failed: 1, pending: 0, complete: true, failures: [fail], apply_ms: { p50: 12, p99: 40 } }));
  const text = c.text();
  assert.is(text.split('✗ h3: no such image').length, 2, 'the failure is printed once');
  assert.is(text.split('\r\x1b[2K').length, 3, 'the bar line is redrawn in place');
  assert.ok(text.includes('1/4 hosts  applied 1, failed 0, pending 3'));
  assert.ok(text.endsWith('complete with failures: 4/4 hosts (applied 3, failed 1, pending 0); apply p50 12ms, p99 40ms\n'), text);
});

test('not a terminal: plain lines; --json: one document per change', () => {
  const c = capture();
  const v = new ProgressView(c.out, 'plain');
  v.update(progress({ reported: 1, applied: 1, pending: 2, offline: 1 }));
  assert.is(c.text(), 'progress: 1/4 hosts (applied 1, failed 0, pending 2, offline 1)\n');
  const j = capture();
  const jv = new ProgressView(j.out, 'json');
  jv.update(progress({}));
  jv.update(progress({ complete: true, pending: 0, offline: 4 }));
  jv.finish(progress({ complete: true }));
  assert.equal(
    j
      .text()
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as RolloutProgress).complete),
    [false, true],
  );
});

test.run();
