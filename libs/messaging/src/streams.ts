import { type JetStreamManager, type StreamConfig, type StreamInfo, JetStreamApiError } from '@nats-io/jetstream';
import { streams } from '@nebula/contracts';

export type StreamKey = keyof typeof streams;

const ms = (v: number) => v * 1_000_000; // JetStream durations are nanoseconds

/** The JetStream config of one of Nebula's streams (settings live in @nebula/contracts). */
export function streamConfig(key: StreamKey): Partial<StreamConfig> & { name: string; subjects: string[] } {
  const s = streams[key];
  const cfg: Partial<StreamConfig> & { name: string; subjects: string[] } = { name: s.name, subjects: [...s.subjects] };
  if ('max_msgs_per_subject' in s) cfg.max_msgs_per_subject = s.max_msgs_per_subject;
  if ('max_age_ms' in s) cfg.max_age = ms(s.max_age_ms);
  if ('duplicate_window_ms' in s) cfg.duplicate_window = ms(s.duplicate_window_ms);
  return cfg;
}

/**
 * Creates the stream, or brings an existing one to the current settings. Safe to call from every
 * replica at start (on NATS 2.9 `add` of an identical stream is a no-op).
 */
export async function ensureStream(jsm: JetStreamManager, key: StreamKey): Promise<StreamInfo> {
  const cfg = streamConfig(key);
  try {
    return await jsm.streams.add(cfg);
  } catch (err) {
    // "stream name already in use with a different configuration": update it in place.
    if (err instanceof JetStreamApiError && err.code === 10058) return jsm.streams.update(cfg.name, cfg);
    throw err;
  }
}

export async function ensureStreams(jsm: JetStreamManager, keys: StreamKey[]): Promise<void> {
  for (const k of keys) await ensureStream(jsm, k);
}
