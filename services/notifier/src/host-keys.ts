import type { Logger } from '@nebula/service-kit';
import type { HostKeyState } from './authenticate.ts';
import { hostKey } from './host-signature.ts';

/**
 * The hosts' registered keys, kept in memory so that checking a message costs no query:
 *
 *   every refresh: read every row (one query) ─▶ replace the map; revocations and new keys take effect
 *   a host not in the map, or whose signature fails with the key in the map: read its row once per
 *   refresh (a host that has just joined, or joined again with a new key, is accepted at once; a
 *   stranger or a forger costs at most one query per refresh)
 *
 * A failed refresh keeps the last map (PostgreSQL away: nothing is written then anyway) and is
 * tried again at the next tick.
 */
export interface HostKeyRow {
  host_id: string;
  public_key: string;
  revoked: boolean;
}

/** Where the keys come from: PostgreSQL's host_credentials (src/db/host-keys.ts), or a fake in tests. */
export interface HostKeySource {
  all(): Promise<HostKeyRow[]>;
  one(hostId: string): Promise<HostKeyRow | null>;
}

const UNKNOWN: HostKeyState = { state: 'unknown' };

interface Entry {
  state: HostKeyState;
  publicKey: string;
}

function toEntry(row: HostKeyRow, log: Logger): Entry {
  if (row.revoked) return { state: { state: 'revoked' }, publicKey: row.public_key };
  try {
    return { state: { state: 'active', key: hostKey(row.public_key) }, publicKey: row.public_key };
  } catch {
    log.warn({ host: row.host_id }, 'host_credentials holds a public key that is not a user nkey: its messages are dropped');
    return { state: UNKNOWN, publicKey: row.public_key };
  }
}

export class HostKeyCache {
  readonly #source: HostKeySource;
  readonly #refreshMs: number;
  readonly #log: Logger;
  #keys = new Map<string, Entry>();
  /** Hosts whose row was read on their own since the last full read. */
  #checked = new Set<string>();
  #inflight = new Map<string, Promise<HostKeyState>>();
  #timer: NodeJS.Timeout | null = null;
  #refreshing: Promise<void> | null = null;
  /** Full reads and single-host reads done (for tests and benchmarks). */
  readonly queries = { all: 0, one: 0 };

  constructor(source: HostKeySource, refreshMs: number, log: Logger) {
    this.#source = source;
    this.#refreshMs = refreshMs;
    this.#log = log;
  }

  /** Reads every key once (a failure rejects: the notifier does not start blind), then keeps them fresh. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.#log.warn({ err }, 'host keys not refreshed; keeping the last ones'));
    }, this.#refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Reads every row again; the one query a refresh costs. */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        this.queries.all += 1;
        const rows = await this.#source.all();
        const keys = new Map<string, Entry>();
        // Keep the decoded keys that did not change.
        for (const r of rows) {
          const old = this.#keys.get(r.host_id);
          keys.set(r.host_id, old && old.publicKey === r.public_key && (old.state.state === 'revoked') === r.revoked ? old : toEntry(r, this.#log));
        }
        this.#keys = keys;
        this.#checked = new Set();
      } finally {
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }

  /** The key state of a host from memory; undefined when its row should be read first (`lookup`). */
  peek(hostId: string): HostKeyState | undefined {
    const e = this.#keys.get(hostId);
    if (e?.state.state === 'active') return e.state;
    return this.#checked.has(hostId) ? (e?.state ?? UNKNOWN) : undefined;
  }

  /** False once the host's row was read on its own since the last refresh. */
  mayLookup(hostId: string): boolean {
    return !this.#checked.has(hostId) || this.#inflight.has(hostId);
  }

  /** Reads one host's row (coalesced; at most once per refresh per host), and remembers the answer. */
  lookup(hostId: string): Promise<HostKeyState> {
    const running = this.#inflight.get(hostId);
    if (running) return running;
    if (this.#checked.has(hostId)) return Promise.resolve(this.#keys.get(hostId)?.state ?? UNKNOWN);
    const p = (async () => {
      try {
        this.queries.one += 1;
        const row = await this.#source.one(hostId);
        const e = row ? toEntry(row, this.#log) : null;
        if (e) this.#keys.set(hostId, e);
        else this.#keys.delete(hostId);
        this.#checked.add(hostId);
        return e?.state ?? UNKNOWN;
      } finally {
        this.#inflight.delete(hostId);
      }
    })();
    this.#inflight.set(hostId, p);
    return p;
  }
}
