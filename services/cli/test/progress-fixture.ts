import type { RolloutProgress } from '@nebula/client';

/** A rollout's progress as the API answers it, for rendering and outcome tests: 4 hosts, all pending, unless `over` says otherwise. */
export function progress(over: Partial<RolloutProgress>): RolloutProgress {
  return {
    id: 'r1',
    kind: 'app',
    app: 'web',
    incarnation: 1,
    revision: 2,
    action: 'update',
    created_at: '2026-01-01T00:00:00.000Z',
    published_at: null,
    publish_error: null,
    state: 'rolling',
    wave: 1,
    waves: [],
    abort_reason: null,
    rollback_rollout_id: null,
    expected: 4,
    reported: 0,
    applied: 0,
    failed: 0,
    superseded: 0,
    pending: 4,
    offline: 0,
    joined: 0,
    complete: false,
    succeeded: false,
    superseded_by: null,
    first_result_at: null,
    last_result_at: null,
    apply_ms: { p50: null, p99: null },
    failures: [],
    hosts: [],
    hosts_next: null,
    ...over,
  };
}
