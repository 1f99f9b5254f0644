import type { NebulaClient, RolloutProgress } from '@nebula/client';
import type { RolloutHost } from '@nebula/contracts';
import { useEffect, useRef, useState } from 'react';
import { errorText } from './use-query.ts';

/**
 * A rollout, live: the first read pages through every host (1,000 a page), then the `watch`
 * stream (server-sent events through the typed client) pushes each change. Its first page of
 * hosts is merged at once; when there are more pages, they are read again at most every 2 s
 * after a change, so 10,000 hosts cost ten reads per couple of seconds, not one per event.
 */
const PAGE = 1000;
const REPAGE_MS = 2000;

export interface LiveRollout {
  progress: RolloutProgress | null;
  hosts: RolloutHost[];
  error: string | null;
  /** The stream is open (false after the rollout completed and the server ended it). */
  live: boolean;
  refresh(): void;
}

async function allHosts(
  client: NebulaClient,
  id: string,
  signal: AbortSignal,
  after?: string,
): Promise<{ first: RolloutProgress | null; hosts: RolloutHost[] }> {
  const hosts: RolloutHost[] = [];
  let first: RolloutProgress | null = null;
  let cursor = after;
  for (let i = 0; i < 100; i++) {
    const p = await client.rollouts.get.query({ id, hosts_limit: PAGE, failures_limit: 100, ...(cursor ? { hosts_after: cursor } : {}) }, { signal });
    first ??= p;
    hosts.push(...p.hosts);
    if (!p.hosts_next) break;
    cursor = p.hosts_next;
  }
  return { first, hosts };
}

function merge(map: Map<string, RolloutHost>, hosts: readonly RolloutHost[]): RolloutHost[] {
  for (const h of hosts) map.set(h.host, h);
  return [...map.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}

export function useRollout(client: NebulaClient, id: string): LiveRollout {
  const [progress, setProgress] = useState<RolloutProgress | null>(null);
  const [hosts, setHosts] = useState<RolloutHost[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const [tick, setTick] = useState(0);
  const byHost = useRef(new Map<string, RolloutHost>());

  // biome-ignore lint/correctness/useExhaustiveDependencies: tick restarts the read and the stream
  useEffect(() => {
    const ac = new AbortController();
    byHost.current = new Map();
    let repageTimer: ReturnType<typeof setTimeout> | null = null;
    let repaging = false;
    let sub: { unsubscribe(): void } | null = null;

    const repage = (after: string) => {
      if (repageTimer || repaging) return;
      repageTimer = setTimeout(async () => {
        repageTimer = null;
        repaging = true;
        try {
          const rest = await allHosts(client, id, AbortSignal.any([ac.signal, AbortSignal.timeout(30_000)]), after);
          if (!ac.signal.aborted) setHosts(merge(byHost.current, rest.hosts));
        } catch (err) {
          if (!ac.signal.aborted) setError(errorText(err));
        } finally {
          repaging = false;
        }
      }, REPAGE_MS);
    };

    (async () => {
      try {
        const { first, hosts: all } = await allHosts(client, id, AbortSignal.any([ac.signal, AbortSignal.timeout(30_000)]));
        if (ac.signal.aborted || !first) return;
        setProgress(first);
        setHosts(merge(byHost.current, all));
        setLive(true);
        sub = client.rollouts.watch.subscribe(
          { id, hosts_limit: PAGE, failures_limit: 100 },
          {
            onData(p) {
              setProgress(p);
              setHosts(merge(byHost.current, p.hosts));
              setError(null);
              if (p.hosts_next) repage(p.hosts_next);
            },
            onError(err) {
              setError(errorText(err));
              setLive(false);
            },
            onComplete() {
              setLive(false);
            },
          },
        );
      } catch (err) {
        if (!ac.signal.aborted) setError(errorText(err));
      }
    })();
    return () => {
      ac.abort();
      sub?.unsubscribe();
      if (repageTimer) clearTimeout(repageTimer);
    };
  }, [client, id, tick]);

  return { progress, hosts, error, live, refresh: () => setTick((t) => t + 1) };
}
