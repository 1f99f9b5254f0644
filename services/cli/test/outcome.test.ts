import type { RolloutProgress } from '@nebula/client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shortfall, stillPending } from '../src/outcome.ts';
import { progress as baseProgress } from './progress-fixture.ts';

type Host = RolloutProgress['hosts'][number];
const host = (id: string, state: Host['state'], expected = true): Host => ({
  host: id,
  state,
  expected,
  online: state !== 'offline',
  error: null,
  image_digest: null,
  durations_ms: null,
  reported_at: null,
});
const progress = (over: Partial<RolloutProgress>) => baseProgress({ expected: 3, pending: 0, complete: true, ...over });

test('shortfall: nothing when it succeeded; else how many applied and what the others are', () => {
  assert.is(shortfall(progress({ succeeded: true })), null);
  assert.is(shortfall(progress({ hosts: [host('h1', 'applied'), host('h2', 'applied'), host('h3', 'offline')] })), '2 of 3 hosts applied: h3 offline');
  assert.is(
    shortfall(progress({ hosts: [host('h1', 'failed'), host('h2', 'superseded'), host('h3', 'applied'), host('h9', 'applied', false)], superseded_by: 'r2' })),
    '1 of 3 hosts applied: h1 failed, h2 superseded; superseded by rollout r2',
  );
  assert.match(shortfall(progress({ expected: 0 }))!, /none was expected/);
  const many = Array.from({ length: 12 }, (_, i) => host(`h${i}`, 'offline'));
  assert.match(
    shortfall(progress({ expected: 500, hosts: many, hosts_next: 'h11' }))!,
    /^not every one of 500 hosts applied: h0 offline, .*h9 offline, and 2 more, maybe more \(all hosts: nebula rollouts get r1\)$/,
  );
});

test('stillPending: the count, and the pending hosts by name', () => {
  assert.is(stillPending(progress({ pending: 2, complete: false }), [host('h2', 'pending'), host('h3', 'pending')]), '2 of 3 hosts still pending: h2, h3');
  assert.is(stillPending(progress({ pending: 1, complete: false }), null), '1 of 3 hosts still pending');
});

test.run();
