import type { Database, Kysely } from '@nebula/db';
import type { Logger } from '@nebula/service-kit';
import { withRevocationList } from '../db/host-identities.ts';
import type { HostBus } from './host-bus.ts';

/**
 * Keeps the NATS servers' revocation list equal to the `revoked_keys` rows still in force.
 *
 *   push() ──ok──▶ clean
 *          ──fail─▶ dirty: pushed again every retryMs until it succeeds (and at the next push())
 *
 * Each push sends the whole list as PostgreSQL has it (under an advisory lock, replicas one at a
 * time), so pushing is idempotent and a failed push loses nothing: the revocation is recorded
 * before the push is tried. The API pushes at start (a restarted server gets the list back) and
 * after every revocation or key replacement.
 */
export class RevocationPusher {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private dirty = false;
  private running: Promise<void> | null = null;
  /** Successful pushes since start (for tests and metrics). */
  pushes = 0;

  private readonly deps: { db: Kysely<Database>; bus: HostBus; log: Logger; retryMs?: number };

  constructor(deps: { db: Kysely<Database>; bus: HostBus; log: Logger; retryMs?: number }) {
    this.deps = deps;
  }

  get pending(): boolean {
    return this.dirty;
  }

  /** Pushes the current list now; rejects when it could not (and keeps retrying in the background). */
  async push(): Promise<void> {
    this.dirty = true;
    // One push at a time in this process; a push asked for meanwhile runs after it with the newer list.
    while (this.running) await this.running.catch(() => undefined);
    const run = this.pushOnce();
    this.running = run;
    try {
      await run;
    } finally {
      this.running = null;
    }
  }

  private async pushOnce(): Promise<void> {
    try {
      const n = await withRevocationList(this.deps.db, async (list) => {
        await this.deps.bus.pushRevocations(list);
        return Object.keys(list).length;
      });
      this.dirty = false;
      this.pushes += 1;
      this.deps.log.info({ revoked_keys: n }, 'revocation list pushed to NATS');
    } catch (err) {
      this.deps.log.warn({ err }, 'could not push the revocation list to NATS: retrying');
      this.schedule();
      throw err;
    }
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.dirty && !this.stopped) this.push().catch(() => undefined);
    }, this.deps.retryMs ?? 10_000);
    this.timer.unref();
  }

  /** The push at start, in the background (NATS may not be up yet: retried). */
  start(): void {
    this.push().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }
}
