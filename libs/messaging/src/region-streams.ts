import { type JetStreamManager, jetstreamManager, type StreamConfig, type StreamSource } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { HUB_DOMAIN, streams } from '@nebula/contracts';
import { addOrUpdateStream, type StreamKey, streamConfig } from './streams.ts';

/**
 * Nebula's streams in a region's JetStream domain (see bus-auth region-config.ts), made from the
 * hub by their owners:
 *
 *   mirror   APPS, GROUPS (the API's): read-only copies of the hub's, same sequence numbers, direct
 *            get on (answered in the region: JetStream's API does not cross a domain); the
 *            region's hosts' consumers live on them
 *   local    RESULTS, HOSTS, EVENTS (the notifier's): what the region's hosts publish, kept there
 *            while the link is cut; the hub's streams of the same names source them
 */
export const REGION_ROLE = { apps: 'mirror', groups: 'mirror', results: 'local', hosts: 'local', events: 'local' } as const satisfies Record<
  StreamKey,
  'mirror' | 'local'
>;

/** The JetStream API prefix of a domain. */
export const domainApi = (domain: string) => `$JS.${domain}.API`;

/** The stream's config in a region: a mirror of the hub's, or the hub's settings with subjects of its own. */
export function regionStreamConfig(key: StreamKey, replicas = 1): Partial<StreamConfig> & { name: string } {
  const base = streamConfig(key, { replicas });
  if (REGION_ROLE[key] === 'local') return base;
  const { subjects: _, duplicate_window: __, ...limits } = base;
  return {
    ...limits,
    // A mirror never refuses what the hub stored: it drops its oldest instead.
    discard: 'old' as StreamConfig['discard'],
    mirror: { name: streams[key].name, external: { api: domainApi(HUB_DOMAIN) } },
  };
}

/** The sources the hub's stream takes from the regions (its own subjects stay as they are). */
export function hubSources(key: StreamKey, regions: readonly string[]): StreamSource[] {
  if (REGION_ROLE[key] !== 'local') return [];
  return [...new Set(regions)].sort().map((r) => ({ name: streams[key].name, external: { api: domainApi(r) } }));
}

/** The JetStream manager of a region's domain, over a hub connection. */
export function regionManager(nc: NatsConnection, region: string, timeoutMs: number): Promise<JetStreamManager> {
  return jetstreamManager(nc, { domain: region, timeout: timeoutMs });
}

/** Creates the streams in the region's domain, or brings them to the current settings (their owner calls this). */
export async function ensureRegionStreams(nc: NatsConnection, region: string, keys: readonly StreamKey[], opts: { timeoutMs?: number } = {}): Promise<void> {
  const jsm = await regionManager(nc, region, opts.timeoutMs ?? 5000);
  for (const key of keys) await addOrUpdateStream(jsm, regionStreamConfig(key));
}

export interface RegionStreamKeeperOptions {
  nc: NatsConnection;
  regions: readonly string[];
  keys: readonly StreamKey[];
  /** Between two passes once every region has its streams (default 60 s): a region's server rebuilt empty gets them back. */
  everyMs?: number;
  /** After a region that could not be reached (default 2 s). */
  retryMs?: number;
  timeoutMs?: number;
  /** A region failed: the first time, then once a minute while it stays so. */
  onError?: (region: string, err: unknown) => void;
  /** A region has its streams (each time it comes back from an error, and the first time). */
  onReady?: (region: string) => void;
}

/**
 * Keeps the streams in every region, from the hub, in the background: a region that cannot be
 * reached (its link cut, its server down) never holds up the service's start; it gets its streams
 * once it answers. `stop()` ends the loop.
 */
export function keepRegionStreams(opts: RegionStreamKeeperOptions): { stop(): void; ready(region: string): boolean } {
  const stopping = new AbortController();
  const state = new Map<string, { ok: boolean; lastSaid: number }>();
  const pass = async (): Promise<boolean> => {
    let allOk = true;
    for (const region of opts.regions) {
      if (stopping.signal.aborted) return allOk;
      const s = state.get(region) ?? { ok: false, lastSaid: -Infinity };
      state.set(region, s);
      try {
        await ensureRegionStreams(opts.nc, region, opts.keys, { timeoutMs: opts.timeoutMs ?? 5000 });
        if (!s.ok) opts.onReady?.(region);
        s.ok = true;
      } catch (err) {
        allOk = false;
        const now = Date.now();
        if (s.ok || now - s.lastSaid >= 60_000) {
          s.lastSaid = now;
          opts.onError?.(region, err);
        }
        s.ok = false;
      }
    }
    return allOk;
  };
  void (async () => {
    while (!stopping.signal.aborted) {
      const ok = await pass();
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, ok ? (opts.everyMs ?? 60_000) : (opts.retryMs ?? 2000));
        stopping.signal.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(t);
          stopping.signal.removeEventListener('abort', done);
          resolve();
        }
      });
    }
  })();
  return {
    stop: () => stopping.abort(),
    ready: (region) => state.get(region)?.ok === true,
  };
}
