import type { Heartbeat } from '@nebula/contracts';
import { type Database, type Kysely, sql } from '@nebula/db';
import { foldInstance, type InstanceState, NO_INSTANCES } from '../instances.ts';
import { compareReceived, isoMicros, type Received } from '../stream-consumer.ts';
import { writeReports } from './write-reports.ts';

/** One host's heartbeats, never none. */
type HostHeartbeats = [Received<Heartbeat>, ...Received<Heartbeat>[]];

/** Each host's heartbeats of a batch, oldest first (server time), hosts in id order. */
export function heartbeatsByHost(heartbeats: Received<Heartbeat>[]): Map<string, HostHeartbeats> {
  const byHost = new Map<string, HostHeartbeats>();
  for (const h of [...heartbeats].sort(compareReceived)) {
    const list = byHost.get(h.value.host);
    if (list) list.push(h);
    else byHost.set(h.value.host, [h]);
  }
  // A stable order over hosts: replicas writing overlapping batches lock rows in the same order.
  return new Map([...byHost.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The newest heartbeat per host (by server time), in host order. */
export function newestHeartbeats(heartbeats: Received<Heartbeat>[]): Received<Heartbeat>[] {
  return [...heartbeatsByHost(heartbeats).values()].map(newestOf);
}

function newestOf(list: HostHeartbeats): Received<Heartbeat> {
  return list.at(-1) ?? list[0]; // the same when there is one
}

function newestUsage(list: HostHeartbeats): string | null {
  const u = list.findLast((h) => h.value.usage !== undefined)?.value.usage;
  return u === undefined ? null : JSON.stringify(u);
}

interface StoredInstances {
  id: string;
  /** last_seen in microseconds since the epoch (text: beyond a float's exact range). */
  last_us: string;
  instance: string | null;
  instances: Record<string, string> | string;
  duplicate_at: Date | null;
}

function toState(row: StoredInstances | undefined): InstanceState {
  if (!row) return NO_INSTANCES;
  const instances = typeof row.instances === 'string' ? (JSON.parse(row.instances) as Record<string, string>) : row.instances;
  const seen: Record<string, number> = {};
  for (const [id, at] of Object.entries(instances)) seen[id] = Date.parse(at);
  return { current: row.instance, seen, duplicateAt: row.duplicate_at?.getTime() ?? null };
}

/**
 * Writes one batch of heartbeats in one transaction: one row per host, from its newest heartbeat.
 * `last_seen` (and `first_seen`) are the server's time: when JetStream stored the heartbeat; the
 * worker's `at` is not used, so a worker whose clock is off is judged like any other. A heartbeat
 * older than the row (a redelivery) never replaces it. Each host's heartbeats also pass through the
 * instance fold (instances.ts), which flags two workers sending under one host id; `offlineAfterMissed`
 * sizes its window like the readers' offline window. The usage samples they carry become host
 * reports (write-reports.ts), in the same transaction. Returns the host rows inserted or changed.
 */
export async function writeHeartbeats(db: Kysely<Database>, heartbeats: Received<Heartbeat>[], offlineAfterMissed: number): Promise<number> {
  const byHost = heartbeatsByHost(heartbeats);
  if (byHost.size === 0) return 0;
  return db.transaction().execute(async (trx) => {
    // Locks the hosts' rows, so replicas sharing the durable fold one host's instances in turn. (A
    // host's very first heartbeats, written by two replicas at once, have no row to lock: the later
    // write keeps only its own instances. An alternation is seen again at the next heartbeats.)
    const stored = (await trx
      .selectFrom('hosts')
      .select(['id', 'instance', 'instances', 'duplicate_at', sql<string>`(extract(epoch from last_seen) * 1000000)::bigint::text`.as('last_us')])
      .where('id', 'in', [...byHost.keys()])
      .orderBy('id')
      .forUpdate()
      .execute()) as StoredInstances[];
    const rowsById = new Map(stored.map((r) => [r.id, r]));
    const rows = [...byHost.entries()].map(([host, list]) => {
      const row = rowsById.get(host);
      const lastUs = row ? BigInt(row.last_us) : -1n;
      let state = toState(row);
      for (const h of list) {
        if (h.ns / 1000n <= lastUs) continue; // already folded (a redelivery)
        state = foldInstance(state, h.value.instance, Number(h.ns / 1_000_000n), h.value.interval_seconds * offlineAfterMissed * 1000);
      }
      const { value: h, ns } = newestOf(list);
      return {
        id: h.host,
        apps: h.apps.map((a) => a.app),
        running: JSON.stringify(h.apps),
        cores: h.cores,
        memory_mb: h.memory_mb,
        worker_version: h.worker_version,
        heartbeat_interval_seconds: h.interval_seconds,
        first_seen: isoMicros(list[0].ns),
        last_seen: isoMicros(ns),
        instance: state.current,
        instances: JSON.stringify(Object.fromEntries(Object.entries(state.seen).map(([id, ms]) => [id, new Date(ms).toISOString()]))),
        duplicate_at: state.duplicateAt === null ? null : new Date(state.duplicateAt),
        // The newest sample of the batch (its newest heartbeat may carry none: the first after a restart).
        usage: newestUsage(list),
        // The group the newest heartbeat follows (none: null): a group change's expected hosts are read from it.
        device_group: h.device_group ?? null,
      };
    });
    const res = await trx
      .insertInto('hosts')
      .values(rows)
      .onConflict((oc) =>
        oc
          .column('id')
          .doUpdateSet((eb) => ({
            apps: eb.ref('excluded.apps'),
            running: eb.ref('excluded.running'),
            cores: eb.ref('excluded.cores'),
            memory_mb: eb.ref('excluded.memory_mb'),
            worker_version: eb.ref('excluded.worker_version'),
            heartbeat_interval_seconds: eb.ref('excluded.heartbeat_interval_seconds'),
            last_seen: eb.ref('excluded.last_seen'),
            instance: eb.ref('excluded.instance'),
            instances: eb.ref('excluded.instances'),
            duplicate_at: eb.ref('excluded.duplicate_at'),
            // A heartbeat without a sample (the first after a restart) keeps the last one.
            usage: sql`coalesce(excluded.usage, hosts.usage)`,
            device_group: eb.ref('excluded.device_group'),
          }))
          .where('hosts.last_seen', '<', (eb) => eb.ref('excluded.last_seen')),
      )
      .executeTakeFirst();
    await writeReports(trx, byHost);
    return Number(res.numInsertedOrUpdatedRows ?? 0n);
  });
}
