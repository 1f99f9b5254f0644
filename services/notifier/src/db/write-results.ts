import type { Result } from '@nebula/contracts';
import { type Database, type Kysely, sql, type Transaction } from '@nebula/db';
import { compareReceived, isoMicros, type Received } from '../stream-consumer.ts';

const key = (r: { rollout_id: string; host: string }) => `${r.rollout_id}\u0000${r.host}`;

/**
 * Of several results for one (rollout, host), the one that counts: the newest by server time (the
 * JetStream timestamp, then the stream sequence). A worker publishes its results one at a time, each
 * after the last was acked, so the stream holds them in the order they happened; the worker's own
 * `at` is not used (its clock may be off, or step back). A redelivered copy keeps its timestamp and
 * changes nothing.
 */
export function newestResults<R extends { rollout_id: string; host: string }>(results: Received<R>[]): Received<R>[] {
  const byKey = new Map<string, Received<R>>();
  for (const r of results) {
    const seen = byKey.get(key(r.value));
    if (!seen || compareReceived(r, seen) > 0) byKey.set(key(r.value), r);
  }
  // A stable order over keys: replicas writing overlapping batches lock rows in the same order.
  return [...byKey.values()].sort((a, b) => (key(a.value) < key(b.value) ? -1 : key(a.value) > key(b.value) ? 1 : 0));
}

/**
 * Upserts one batch of results in one transaction: one row per (rollout, host). A row is replaced
 * only by a strictly newer result (`reported_at` = when the server stored it) with another outcome, so
 * redelivered, repeated or older results never count twice or undo a newer one. Returns the rows
 * inserted or changed.
 */
export async function writeResults(db: Kysely<Database>, results: Received<Result>[]): Promise<number> {
  const rows = newestResults(results).map(({ value: r, ns }) => ({
    rollout_id: r.rollout_id,
    host: r.host,
    status: r.status,
    error: r.error,
    image_digest: r.image_digest,
    containers: JSON.stringify(r.containers),
    pull_ms: Math.round(r.durations_ms.pull),
    apply_ms: Math.round(r.durations_ms.apply),
    reported_at: isoMicros(ns),
  }));
  if (rows.length === 0) return 0;
  return db.transaction().execute((trx) => upsertRolloutHosts(trx, rows));
}

/** One row of rollout_hosts as a host's result (an app's or a device group's) makes it. */
export interface RolloutHostRow {
  rollout_id: string;
  host: string;
  status: string;
  error: string | null;
  image_digest: string | null;
  /** JSON text. */
  containers: string;
  pull_ms: number;
  apply_ms: number;
  /** Server time (isoMicros of the JetStream timestamp). */
  reported_at: string;
}

/**
 * The upsert every host result goes through (one row per rollout and host, from `newestResults`):
 * a row is replaced only by a strictly newer result with another outcome. Returns the rows inserted
 * or changed.
 */
export async function upsertRolloutHosts(trx: Transaction<Database>, rows: RolloutHostRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const res = await trx
    .insertInto('rollout_hosts')
    .values(rows)
    .onConflict((oc) =>
      oc
        .columns(['rollout_id', 'host'])
        .doUpdateSet((eb) => ({
          status: eb.ref('excluded.status'),
          error: eb.ref('excluded.error'),
          image_digest: eb.ref('excluded.image_digest'),
          containers: eb.ref('excluded.containers'),
          pull_ms: eb.ref('excluded.pull_ms'),
          apply_ms: eb.ref('excluded.apply_ms'),
          reported_at: eb.ref('excluded.reported_at'),
        }))
        .where('rollout_hosts.reported_at', '<', (eb) => eb.ref('excluded.reported_at'))
        // A repeat of the outcome the row has (a worker reporting again after a redelivery) is no news.
        .where(
          sql<boolean>`(rollout_hosts.status, rollout_hosts.error, rollout_hosts.image_digest, rollout_hosts.containers) is distinct from (excluded.status, excluded.error, excluded.image_digest, excluded.containers)`,
        ),
    )
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n);
}
