import pg from 'pg';
import type { Logger } from '@nebula/service-kit';
import { OUTBOX_CHANNEL } from './apps.ts';

/**
 * Publishes committed outbox rows to JetStream, one replica at a time.
 *
 *   idle ──start()──▶ connecting ──▶ waiting: pg_try_advisory_lock every lockPollMs, on its own session
 *                          ▲                 │ lock taken
 *                          │                 ▼
 *        connection lost   └───────────── active: LISTEN; drain; wait for NOTIFY or pollMs; drain...
 *        (PostgreSQL drops the lock with the session: a waiting replica takes over)
 *   any ──stop()──▶ stopped (session ended: lock released)
 *
 * drain: unpublished rows in id order; each is published (retried with backoff while NATS is down,
 * never skipped, so per-app order holds) and marked published after JetStream's ack. The lock session
 * also runs the reads and marks, so a relay that lost its session cannot mark anything. A crash
 * between ack and mark makes the next relay publish the row again: the message id
 * (app:incarnation:revision) makes JetStream drop that duplicate.
 */
export interface Publisher {
  publish(subject: string, payload: Uint8Array, msgId: string): Promise<void>;
}

export type RelayState = 'idle' | 'connecting' | 'waiting' | 'active' | 'stopped';

export interface OutboxRelayOptions {
  databaseUrl: string;
  publisher: Publisher;
  log: Logger;
  lockPollMs?: number;
  pollMs?: number;
  maxBackoffMs?: number;
  batchSize?: number;
}

/** Arbitrary constant, distinct from the migration lock. */
const RELAY_LOCK_ID = 727_002;

interface OutboxRow {
  id: string;
  subject: string;
  msg_id: string;
  payload: { rollout_id?: string };
}

export class OutboxRelay {
  #opts: Required<OutboxRelayOptions>;
  #state: RelayState = 'idle';
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #pending = false;
  #published = 0;

  constructor(opts: OutboxRelayOptions) {
    this.#opts = { lockPollMs: 1000, pollMs: 1000, maxBackoffMs: 5000, batchSize: 100, ...opts };
  }

  get state(): RelayState {
    return this.#state;
  }

  /** Rows this relay has published (for metrics and tests). */
  get published(): number {
    return this.#published;
  }

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#poke();
    await this.#loop;
    this.#state = 'stopped';
  }

  #poke() {
    this.#pending = true;
    this.#wake?.();
  }

  /** Sleeps up to `ms`, returning early on NOTIFY or stop. */
  #sleep(ms: number): Promise<void> {
    if (this.#pending || this.#stopping) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wake = null;
        self.#pending = false;
        resolve();
      }
      this.#wake = done;
    });
  }

  async #run(): Promise<void> {
    const { log } = this.#opts;
    let retryMs = 100;
    while (!this.#stopping) {
      this.#state = 'connecting';
      const client = new pg.Client({ connectionString: this.#opts.databaseUrl, application_name: 'nebula-api-outbox-relay' });
      // Without a listener a dropped connection would crash the process; the next query fails instead.
      client.on('error', (err) => log.warn({ err }, 'outbox relay: database connection error'));
      try {
        await client.connect();
        this.#state = 'waiting';
        while (!this.#stopping) {
          const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [RELAY_LOCK_ID]);
          if (r.rows[0]?.ok === true) break;
          await this.#sleep(this.#opts.lockPollMs);
        }
        if (this.#stopping) break;
        this.#state = 'active';
        log.info('outbox relay: active on this replica');
        client.on('notification', () => this.#poke());
        await client.query(`listen ${OUTBOX_CHANNEL}`);
        retryMs = 100;
        while (!this.#stopping) {
          await this.#drain(client);
          await this.#sleep(this.#opts.pollMs);
        }
      } catch (err) {
        if (!this.#stopping) {
          log.warn({ err }, 'outbox relay: lost its database session; reconnecting');
          await this.#sleep(retryMs);
          retryMs = Math.min(retryMs * 2, this.#opts.maxBackoffMs);
        }
      } finally {
        // Ending the session releases the advisory lock.
        await client.end().catch(() => undefined);
      }
    }
    this.#state = 'stopped';
  }

  async #drain(client: pg.Client): Promise<void> {
    for (;;) {
      const { rows } = await client.query<OutboxRow>(
        'select id, subject, msg_id, payload from outbox where published_at is null order by id limit $1',
        [this.#opts.batchSize],
      );
      if (rows.length === 0) return;
      for (const row of rows) {
        if (!(await this.#publish(row))) return;
        await client.query('update outbox set published_at = now() where id = $1', [row.id]);
        if (row.payload.rollout_id) {
          await client.query('update rollouts set published_at = now() where id = $1 and published_at is null', [row.payload.rollout_id]);
        }
        this.#published++;
      }
    }
  }

  /** True once JetStream acked the row; false only when stopping. Retries forever otherwise. */
  async #publish(row: OutboxRow): Promise<boolean> {
    const data = new TextEncoder().encode(JSON.stringify(row.payload));
    let delay = 100;
    let failures = 0;
    while (!this.#stopping) {
      try {
        await this.#opts.publisher.publish(row.subject, data, row.msg_id);
        if (failures > 0) this.#opts.log.info({ outbox_id: row.id, failures }, 'outbox relay: publishing again');
        return true;
      } catch (err) {
        if (failures === 0) this.#opts.log.warn({ err, outbox_id: row.id }, 'outbox relay: publish failed; retrying with backoff');
        failures++;
        // A sleep that NOTIFY does not cut short: new rows do not make NATS come back sooner.
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, this.#opts.maxBackoffMs);
      }
    }
    return false;
  }
}
