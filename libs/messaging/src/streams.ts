import { JetStreamApiError, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import { streams } from '@nebula/contracts';
import { hubSources } from './region-streams.ts';
import { chooseReplicas, type ReplicaSetting } from './replicas.ts';

/**
 * Nebula's streams and who owns them (settings and owners live in @nebula/contracts `streams`):
 *
 *   owner   ──ensureStream──▶ created, or brought to the current settings (at start, and again
 *                             whenever the owner finds it missing)
 *   others  ──waitForStream─▶ info only: retried until the owner has made it; never created or
 *                             updated here, so two versions of two services cannot fight over limits
 */
export type StreamKey = keyof typeof streams;

const ms = (v: number) => v * 1_000_000; // JetStream durations are nanoseconds

/** What an installation chooses about its streams, rather than the code. */
export interface StreamOptions {
  /**
   * Copies of each stream in a NATS cluster (`NATS_STREAM_REPLICAS`; default `auto`, see
   * chooseReplicas): 3 on a three-server cluster, so that one server down loses nothing and stops
   * nothing. Always sent, so that the owner keeps the stream at it (a stream edited by hand to
   * another count is brought back; with `auto`, only up).
   */
  replicas?: ReplicaSetting;
  /** The servers of the cluster, read when the stream is ensured (`clusterSizeOf(nc.info)`); default 1. */
  clusterSize?: number | (() => number);
  /** The regions whose streams of the same name this one sources (RESULTS, HOSTS, EVENTS; see region-streams.ts). */
  regions?: readonly string[];
}

/** The JetStream config of one of Nebula's streams (`auto` here: one copy; ensureStream decides it from the cluster). */
export function streamConfig(
  key: StreamKey,
  opts: { replicas?: ReplicaSetting | undefined } = {},
): Partial<StreamConfig> & { name: string; subjects: string[] } {
  const s = streams[key];
  const cfg: Partial<StreamConfig> & { name: string; subjects: string[] } = {
    name: s.name,
    subjects: [...s.subjects],
    storage: s.storage as StreamConfig['storage'],
    max_msgs: s.max_msgs,
    max_bytes: s.max_bytes,
    max_age: ms(s.max_age_ms),
    discard: s.discard as StreamConfig['discard'],
    duplicate_window: ms(s.duplicate_window_ms),
    num_replicas: typeof opts.replicas === 'number' ? opts.replicas : 1,
  };
  if ('max_msgs_per_subject' in s) cfg.max_msgs_per_subject = s.max_msgs_per_subject;
  if ('allow_direct' in s) cfg.allow_direct = s.allow_direct;
  return cfg;
}

/**
 * Creates the stream, or brings an existing one to the current settings. Only the stream's owner
 * calls this (on NATS 2.9 `add` of an identical stream is a no-op, so every replica may).
 */
export async function ensureStream(jsm: JetStreamManager, key: StreamKey, opts: StreamOptions = {}): Promise<StreamInfo> {
  const cfg: Partial<StreamConfig> & { name: string } = streamConfig(key, { replicas: await replicasFor(jsm, key, opts) });
  const sources = hubSources(key, opts.regions ?? []);
  // Sent empty too: a region no longer listed stops being sourced.
  if (sources.length > 0 || opts.regions !== undefined) cfg.sources = sources;
  return addOrUpdateStream(jsm, cfg);
}

/** Creates the stream, or updates it in place when it exists with other settings. */
export async function addOrUpdateStream(jsm: JetStreamManager, cfg: Partial<StreamConfig> & { name: string }): Promise<StreamInfo> {
  try {
    return await jsm.streams.add(cfg);
  } catch (err) {
    // "stream name already in use with a different configuration": update it in place.
    if (err instanceof JetStreamApiError && err.code === 10058) return jsm.streams.update(cfg.name, cfg);
    throw err;
  }
}

/** The copies the stream gets: the setting, or (auto) from the cluster's size and the copies it has now. */
async function replicasFor(jsm: JetStreamManager, key: StreamKey, opts: StreamOptions): Promise<number> {
  const setting = opts.replicas ?? 'auto';
  if (setting !== 'auto') return chooseReplicas(setting, 1);
  const size = typeof opts.clusterSize === 'function' ? opts.clusterSize() : (opts.clusterSize ?? 1);
  let existing: number | undefined;
  try {
    existing = (await jsm.streams.info(streams[key].name)).config.num_replicas;
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  return chooseReplicas('auto', size, existing);
}

export async function ensureStreams(jsm: JetStreamManager, keys: StreamKey[], opts: StreamOptions = {}): Promise<void> {
  for (const k of keys) await ensureStream(jsm, k, opts);
}

/** JetStream's "stream not found". */
export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === 10059;
}

export interface WaitForStreamOptions {
  /** Between two looks (default 1 s). */
  retryMs?: number;
  /** Stops waiting (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Called on the first miss and then about every 30 s: the caller logs it. */
  onWaiting?: (message: string, fields: { stream: string; owner: string; waited_ms: number }) => void;
}

/**
 * Resolves once the stream exists, without creating or changing it: for the services that use a
 * stream they do not own. A NATS that does not answer yet counts as a miss too.
 */
export async function waitForStream(jsm: JetStreamManager, key: StreamKey, opts: WaitForStreamOptions = {}): Promise<StreamInfo> {
  const { name, owner } = streams[key];
  const retryMs = opts.retryMs ?? 1000;
  const started = Date.now();
  let lastSaid = -Infinity;
  for (;;) {
    opts.signal?.throwIfAborted();
    let reason: string;
    try {
      return await jsm.streams.info(name);
    } catch (err) {
      reason = isStreamNotFound(err) ? 'it does not exist yet' : `it cannot be read (${err instanceof Error ? err.message : String(err)})`;
    }
    const waited = Date.now() - started;
    if (waited - lastSaid >= 30_000) {
      lastSaid = waited;
      opts.onWaiting?.(`waiting for stream ${name}: ${reason}; the ${owner} creates it`, { stream: name, owner, waited_ms: waited });
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, retryMs);
      opts.signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(t);
        opts.signal?.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

export async function waitForStreams(jsm: JetStreamManager, keys: StreamKey[], opts: WaitForStreamOptions = {}): Promise<void> {
  for (const k of keys) await waitForStream(jsm, k, opts);
}
