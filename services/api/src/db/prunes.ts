import type { HostPrune, PruneList } from '@nebula/contracts';
import { type Database, type Kysely, sql } from '@nebula/db';

/**
 * What hosts freed with image prunes (table host_prunes, written by the notifier from the hosts'
 * reports). `groups`: only these device groups (the ones the caller may read); null: every group.
 */
export interface PruneFilter {
  device_group?: string | undefined;
  prune_id?: number | undefined;
  host?: string | undefined;
  groups: readonly string[] | null;
  limit: number;
}

/** Newest prune first (then group, host); `bytes_freed` sums every matching row, not only those listed. */
export async function listPrunes(db: Kysely<Database>, f: PruneFilter): Promise<PruneList> {
  if (f.groups !== null && f.groups.length === 0) return { prunes: [], bytes_freed: 0 };
  let q = db.selectFrom('host_prunes');
  if (f.device_group !== undefined) q = q.where('device_group', '=', f.device_group);
  if (f.prune_id !== undefined) q = q.where('prune_id', '=', f.prune_id);
  if (f.host !== undefined) q = q.where('host', '=', f.host);
  if (f.groups !== null) q = q.where(sql<boolean>`device_group = any(${[...f.groups]}::text[])`);
  const [rows, total] = await Promise.all([
    q
      .select(['host', 'device_group', 'prune_id', 'bytes_freed', 'images_removed', 'error', 'reported_at'])
      .orderBy('reported_at', 'desc')
      .orderBy('device_group')
      .orderBy('host')
      .orderBy('prune_id', 'desc')
      .limit(f.limit)
      .execute(),
    q.select(sql<string>`coalesce(sum(bytes_freed), 0)::text`.as('total')).executeTakeFirstOrThrow(),
  ]);
  const prunes: HostPrune[] = rows.map((r) => ({
    host: r.host,
    device_group: r.device_group,
    prune_id: r.prune_id,
    bytes_freed: Number(r.bytes_freed),
    images_removed: r.images_removed,
    error: r.error,
    reported_at: r.reported_at.toISOString(),
  }));
  return { prunes, bytes_freed: Number(total.total) };
}
