import type { Heartbeat } from '@nebula/contracts';
import type { Database, Kysely } from '@nebula/db';

/** The newest heartbeat per host (by the worker's `at`), in host order. */
export function newestHeartbeats(heartbeats: Heartbeat[]): Heartbeat[] {
  const byHost = new Map<string, Heartbeat>();
  for (const h of heartbeats) {
    const seen = byHost.get(h.host);
    if (!seen || Date.parse(h.at) > Date.parse(seen.at)) byHost.set(h.host, h);
  }
  return [...byHost.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}

/**
 * Upserts one batch of heartbeats in one transaction: one row per host, `last_seen` = the
 * heartbeat's `at`. An older heartbeat delivered late never replaces a newer one. Returns the rows
 * inserted or changed.
 */
export async function writeHeartbeats(db: Kysely<Database>, heartbeats: Heartbeat[]): Promise<number> {
  const rows = newestHeartbeats(heartbeats).map((h) => ({
    id: h.host,
    apps: h.apps.map((a) => a.app),
    running: JSON.stringify(h.apps),
    cores: h.cores,
    memory_mb: h.memory_mb,
    worker_version: h.worker_version,
    heartbeat_interval_seconds: h.interval_seconds,
    first_seen: new Date(h.at),
    last_seen: h.at,
  }));
  if (rows.length === 0) return 0;
  return db.transaction().execute(async (trx) => {
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
          }))
          .where('hosts.last_seen', '<', (eb) => eb.ref('excluded.last_seen')),
      )
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n);
  });
}
