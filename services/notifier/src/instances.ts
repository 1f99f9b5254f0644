/**
 * Two workers with the same host id: each worker process sends a random `instance` in its
 * heartbeats, so one host id heard from two processes shows as instances alternating.
 *
 *   A A A (restart) B B B       one worker restarted: B is new, A is not heard again: not a duplicate
 *   A B A B ...                 two workers: an instance comes back after another one spoke: duplicate
 *
 * The fold runs over one host's heartbeats in server-time order. It remembers every instance heard
 * within the window (the host's offline window: a worker silent that long is gone anyway), and
 * flags the host when a heartbeat comes from an instance that is not the last one but was heard in
 * the window. The notifier cannot tell which worker is the right one, so it flags the host rather
 * than refusing either; the flag lasts one window after the last alternation.
 */
export interface InstanceState {
  /** The instance of the newest heartbeat (null: none heard, or an old worker that sends none). */
  current: string | null;
  /** Instances heard within the window: instance -> last heard (ms, server time). */
  seen: Record<string, number>;
  /** When two instances last alternated (ms, server time), or null. */
  duplicateAt: number | null;
}

export const NO_INSTANCES: InstanceState = { current: null, seen: {}, duplicateAt: null };

/** The state after one more heartbeat of the host, heard at `atMs` (server time). */
export function foldInstance(state: InstanceState, instance: string | undefined, atMs: number, windowMs: number): InstanceState {
  if (instance === undefined) return state; // a worker from before instances: nothing to tell
  const seen: Record<string, number> = {};
  for (const [id, last] of Object.entries(state.seen)) if (last >= atMs - windowMs) seen[id] = last;
  const alternated = state.current !== null && instance !== state.current && instance in seen;
  seen[instance] = Math.max(seen[instance] ?? atMs, atMs);
  return { current: instance, seen, duplicateAt: alternated ? atMs : state.duplicateAt };
}
