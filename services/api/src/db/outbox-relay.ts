import { type Database, type Kysely, sql } from '@nebula/db';
import type { Logger } from '@nebula/service-kit';
import pg from 'pg';
import { OUTBOX_CHANNEL } from './apps.ts';
import { planRound, type RoundLimits } from './outbox-round.ts';
import { republishMissing } from './republish.ts';
import { republishMissingGroups } from './republish-groups.ts';

/**
 * Publishes committed outbox rows to JetStream, one replica at a time.
 *
 *   idle ──start()──▶ connecting ──▶ waiting: pg_try_advisory_lock every lockPollMs, on its own session
 *                          ▲                 │ lock taken
 *                          │                 ▼
 *        connection lost   └───────────── active: LISTEN; check the stream; drain; wait for NOTIFY or
 *        (PostgreSQL drops the lock with the session: a waiting replica takes over)   pollMs; drain...
 *   any ──stop()──▶ stopped (session ended: lock released)
 *
 * drain, in rounds (outbox-round.ts says which rows): the oldest pending rows (up to rowsPerSubject)
 * of the subjects (apps, device groups; up to subjectsPerRound) whose oldest row is oldest, subjects
 * backing off left out. The subjects' chains go out concurrently; within a chain each row is published
 * after the previous one's ack, so order is kept per subject (what hosts rely on), and only per subject:
 *
 *   row of app A ──ack──────────────────▶ published; A's next row of the chain goes out
 *                ──transient failure────▶ stays, with the rest of A's chain (in order); A backs off
 *                  (NATS down, timeout)     (doubling, up to maxBackoffMs), the other apps go on
 *                ──permanent failure────▶ dead-lettered (dead_at, error; its rollout gets
 *                  (max payload exceeded,   publish_error), never retried; A's chain goes on as
 *                   permissions violation)  usual: the latest revision wins
 *
 * Once every chain of the round has ended, the round is marked in one statement (markRound): its
 * published rows and their rollouts, its dead letters and theirs.
 *
 * The lock session also runs the reads and marks, so a relay that lost its session cannot mark
 * anything. A crash between ack and mark makes the next relay publish the row again: the message id
 * (the rollout id) makes JetStream drop that duplicate.
 *
 * check (when active, then every streamCheckMs): the latest revision of every live app whose subject
 * is missing from the stream (APPS deleted, recreated or purged) gets a new outbox row (see
 * republish.ts), and so does the newest message of every live device group missing from GROUPS
 * (republish-groups.ts); the drain publishes them like any other.
 */
export interface Publisher {
  /** Rejects with an error whose `retryable` is false when the message can never be published. */
  publish(subject: string, payload: Uint8Array, msgId: string): Promise<void>;
  /** Subjects of APPS and GROUPS whose newest message is ours (signed by the control plane); creates a stream that is missing. */
  storedSubjects?(): Promise<Set<string>>;
}

export type RelayState = 'idle' | 'connecting' | 'waiting' | 'active' | 'stopped';

export interface OutboxRelayOptions {
  databaseUrl: string;
  publisher: Publisher;
  log: Logger;
  lockPollMs?: number;
  pollMs?: number;
  /** Backoff of one app's transient failures: 100 ms doubling up to this. */
  maxBackoffMs?: number;
  /** Subjects (apps, device groups) published concurrently per round. */
  subjectsPerRound?: number;
  /** Rows of one subject published per round, one after the other's ack. */
  rowsPerSubject?: number;
  /** How often the stream is compared with what PostgreSQL says is published (0: only on becoming active). */
  streamCheckMs?: number;
}

/** Arbitrary constant, distinct from the migration lock. */
const RELAY_LOCK_ID = 727_002;

export interface OutboxRow {
  id: string;
  subject: string;
  msg_id: string;
  payload: { rollout_id?: string };
}

interface DeadRow {
  row: OutboxRow;
  error: string;
}

/** A session of the relay's own (not from a pool: the advisory lock lives as long as it does), not yet connected. */
export function relaySession(databaseUrl: string, log: Logger): pg.Client {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'nebula-api-outbox-relay' });
  // Without a listener a dropped connection would crash the process; the next query fails instead.
  client.on('error', (err) => log.warn({ err }, 'outbox relay: database connection error'));
  return client;
}

/**
 * The rows of the next round (see outbox-round.ts), read on the given session: the oldest pending
 * row of every subject not waiting, the `maxSubjects` oldest of those, and behind each up to
 * `rowsPerSubject` of its subject's pending rows (index outbox_pending_by_subject serves both steps).
 */
export async function selectRound(client: pg.ClientBase, waiting: ReadonlySet<string>, limits: RoundLimits): Promise<OutboxRow[][]> {
  const { rows } = await client.query<OutboxRow>(
    `with heads as (
       select distinct on (subject) subject, id from outbox
        where published_at is null and dead_at is null and not (subject = any($3::text[]))
        order by subject, id),
     chosen as (select subject from heads order by id limit $1)
     select o.id::text as id, o.subject, o.msg_id, o.payload
       from chosen c cross join lateral (
         select id, subject, msg_id, payload from outbox
          where subject = c.subject and published_at is null and dead_at is null
          order by id limit $2) o`,
    [limits.maxSubjects, limits.rowsPerSubject, [...waiting]],
  );
  return planRound(rows, waiting, limits);
}

/**
 * Marks a round in one statement: its published rows and their rollouts published, its dead letters
 * dead with their error on their rollouts (unless another row of the same rollout went out). Runs on
 * the lock session: a relay that lost it marks nothing.
 */
export async function markRound(client: pg.ClientBase, published: readonly OutboxRow[], dead: readonly DeadRow[]): Promise<void> {
  if (published.length === 0 && dead.length === 0) return;
  // A rollout id that is not a uuid (no rollout has it) matches nothing rather than failing the round.
  const rolloutId = `case when o.payload->>'rollout_id' ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then (o.payload->>'rollout_id')::uuid end`;
  await client.query(
    `with pub as (
       update outbox o set published_at = now() where o.id = any($1::bigint[])
       returning ${rolloutId} as rollout_id),
     dead as (
       update outbox o set dead_at = now(), error = d.error
         from unnest($2::bigint[], $3::text[]) as d(id, error)
        where o.id = d.id
       returning ${rolloutId} as rollout_id, d.error),
     rollouts_published as (
       update rollouts set published_at = now()
        where id in (select rollout_id from pub) and published_at is null)
     update rollouts r set publish_error = dead.error, publish_failed_at = now()
       from dead
      where r.id = dead.rollout_id and r.published_at is null
        and not exists (select 1 from pub where pub.rollout_id = r.id)`,
    [published.map((r) => r.id), dead.map((d) => d.row.id), dead.map((d) => d.error)],
  );
}

/** Seconds the oldest row still to be published has waited (0 when none waits); PostgreSQL's clock. */
export async function oldestUnpublishedSeconds(db: Kysely<Database>): Promise<number> {
  const r = await sql<{
    s: number | null;
  }>`select extract(epoch from now() - min(created_at))::float8 as s from outbox where published_at is null and dead_at is null`.execute(db);
  return Math.max(0, r.rows[0]?.s ?? 0);
}

/** The delay before an app's next attempt after `failures` transient failures in a row. */
export function backoffMs(failures: number, maxMs: number, baseMs = 100): number {
  return Math.min(baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)), maxMs);
}

export class OutboxRelay {
  #opts: Required<OutboxRelayOptions>;
  #state: RelayState = 'idle';
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #pending = false;
  #published = 0;
  #deadLettered = 0;
  #republished = 0;
  #streamChecks = 0;
  /** Per subject backing off after transient failures: failures in a row and when to try again. */
  #backoff = new Map<string, { failures: number; until: number }>();
  #nextCheck = 0;

  constructor(opts: OutboxRelayOptions) {
    this.#opts = { lockPollMs: 1000, pollMs: 1000, maxBackoffMs: 5000, subjectsPerRound: 100, rowsPerSubject: 50, streamCheckMs: 30_000, ...opts };
    for (const k of ['subjectsPerRound', 'rowsPerSubject'] as const) {
      const v = this.#opts[k];
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`OutboxRelay: ${k} must be an integer >= 1 (got ${v})`);
    }
  }

  get state(): RelayState {
    return this.#state;
  }

  /** Rows this relay has published (for metrics and tests). */
  get published(): number {
    return this.#published;
  }

  /** Rows this relay has dead-lettered. */
  get deadLettered(): number {
    return this.#deadLettered;
  }

  /** Rows this relay added because their app's latest revision was missing from the stream. */
  get republished(): number {
    return this.#republished;
  }

  /** Comparisons of the stream with the database done (for tests). */
  get streamChecks(): number {
    return this.#streamChecks;
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
      const client = relaySession(this.#opts.databaseUrl, log);
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
        this.#backoff.clear();
        this.#nextCheck = 0; // at once: the stream may have been lost while no relay was active
        while (!this.#stopping) {
          await this.#checkStream(client);
          await this.#drain(client);
          await this.#sleep(this.#nextWakeMs());
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

  /** Until the next poll, or earlier when an app's backoff ends first. */
  #nextWakeMs(): number {
    let ms = this.#opts.pollMs;
    const now = Date.now();
    // Ended backoffs are left to the next poll: their app may have no row left (a hot loop otherwise).
    for (const b of this.#backoff.values()) if (b.until > now) ms = Math.min(ms, b.until - now);
    return ms;
  }

  async #checkStream(client: pg.Client): Promise<void> {
    const { publisher, streamCheckMs, log } = this.#opts;
    if (!publisher.storedSubjects || Date.now() < this.#nextCheck) return;
    this.#nextCheck = streamCheckMs > 0 ? Date.now() + streamCheckMs : Number.POSITIVE_INFINITY;
    let stored: Set<string>;
    try {
      stored = await publisher.storedSubjects();
    } catch (err) {
      // NATS down: nothing to compare with; the drain's retries cover the rows, the next check the rest.
      log.warn({ err }, 'outbox relay: could not read the APPS and GROUPS streams to compare them with the database');
      return;
    }
    const added = await republishMissing(client, stored);
    const groups = await republishMissingGroups(client, stored);
    this.#streamChecks++;
    this.#republished += added.length + groups.length;
    if (added.length > 0) {
      log.warn(
        { apps: added.length, subjects: added.slice(0, 20) },
        'outbox relay: the latest revision of live apps was missing from the APPS stream; publishing it again',
      );
    }
    if (groups.length > 0) {
      log.warn(
        { device_groups: groups.length, subjects: groups.slice(0, 20) },
        "outbox relay: live device groups' newest message was missing from the GROUPS stream; publishing it again",
      );
    }
  }

  async #drain(client: pg.Client): Promise<void> {
    const limits = { maxSubjects: this.#opts.subjectsPerRound, rowsPerSubject: this.#opts.rowsPerSubject };
    for (;;) {
      if (this.#stopping) return;
      const now = Date.now();
      const waiting = new Set([...this.#backoff].filter(([, b]) => b.until > now).map(([subject]) => subject));
      const chains = await selectRound(client, waiting, limits);
      if (chains.length === 0) return;
      const settled = await Promise.all(chains.map((chain) => this.#publishChain(chain)));
      const published = settled.flatMap((s) => s.published);
      const dead = settled.flatMap((s) => s.dead);
      await markRound(client, published, dead);
      this.#published += published.length;
      this.#deadLettered += dead.length;
      // Every subject that had a row is backing off now: wait for the first backoff to end.
      if (published.length + dead.length === 0) return;
    }
  }

  /**
   * One subject's rows in order, each published after the previous one's ack. A transient failure
   * ends the chain (the rest stay pending, in order, for a later round); a dead letter does not.
   */
  async #publishChain(chain: OutboxRow[]): Promise<{ published: OutboxRow[]; dead: DeadRow[] }> {
    const published: OutboxRow[] = [];
    const dead: DeadRow[] = [];
    for (const row of chain) {
      if (this.#stopping) break;
      const o = await this.#publish(row);
      if (o.kind === 'published') published.push(row);
      else if (o.kind === 'dead') dead.push({ row, error: o.error });
      else break;
    }
    return { published, dead };
  }

  async #publish(row: OutboxRow): Promise<{ kind: 'published' } | { kind: 'dead'; error: string } | { kind: 'retry' }> {
    const { log, publisher, maxBackoffMs } = this.#opts;
    const data = new TextEncoder().encode(JSON.stringify(row.payload));
    try {
      await publisher.publish(row.subject, data, row.msg_id);
      const b = this.#backoff.get(row.subject);
      if (b) log.info({ outbox_id: row.id, subject: row.subject, failures: b.failures }, 'outbox relay: publishing again');
      this.#backoff.delete(row.subject);
      return { kind: 'published' };
    } catch (err) {
      if ((err as { retryable?: unknown }).retryable === false) {
        const error = err instanceof Error ? err.message : String(err);
        log.error(
          { err, outbox_id: row.id, subject: row.subject, rollout_id: row.payload.rollout_id },
          `outbox relay: ${row.subject} can never be published (${error}); dead-lettered, the app's later revisions go on`,
        );
        this.#backoff.delete(row.subject);
        return { kind: 'dead', error };
      }
      const failures = (this.#backoff.get(row.subject)?.failures ?? 0) + 1;
      if (failures === 1) log.warn({ err, outbox_id: row.id, subject: row.subject }, 'outbox relay: publish failed; retrying this app with backoff');
      this.#backoff.set(row.subject, { failures, until: Date.now() + backoffMs(failures, maxBackoffMs) });
      return { kind: 'retry' };
    }
  }
}
