import type { Host, HostList, HostStatus, HostUsage } from '@nebula/contracts';
import { type Kysely, sql } from 'kysely';
import type { Database } from './database.ts';
import { checkOnline, clampLimit, duplicateSql, instancesSql, iso, type Online, type OnlineOptions, onlineSql } from './query-input.ts';

/**
 * Hosts as their heartbeats describe them. Online or offline is judged when asked, from the last
 * heartbeat (server time) and the host's own announced interval: a host is offline once
 * `offlineAfterMissed` heartbeats in a row are missing. A host whose heartbeats came from two worker
 * processes taking turns within that window is `duplicate` (two workers with one host id).
 */

interface HostRow {
  id: string;
  apps: string[];
  running: unknown;
  cores: number;
  memory_mb: number;
  worker_version: string;
  heartbeat_interval_seconds: number;
  first_seen: Date;
  last_seen: Date;
  online: boolean;
  duplicate: boolean;
  instances: number;
  usage: unknown;
  device_group: string | null;
  region: string | null;
}

function toHost(row: HostRow, n: number): Host {
  const lastSeen = new Date(row.last_seen);
  return {
    id: row.id,
    status: row.online ? 'online' : 'offline',
    apps: row.apps,
    // Written only from heartbeats that passed heartbeatSchema.
    running: (typeof row.running === 'string' ? JSON.parse(row.running) : row.running) as Host['running'],
    cores: row.cores,
    memory_mb: row.memory_mb,
    worker_version: row.worker_version,
    heartbeat_interval_seconds: row.heartbeat_interval_seconds,
    first_seen: iso(row.first_seen),
    last_seen: iso(lastSeen),
    offline_after: new Date(lastSeen.getTime() + row.heartbeat_interval_seconds * n * 1000).toISOString(),
    duplicate: row.duplicate,
    instances: row.instances,
    // Written only from heartbeats that passed heartbeatSchema.
    usage: (typeof row.usage === 'string' ? JSON.parse(row.usage) : (row.usage ?? null)) as HostUsage | null,
    device_group: row.device_group,
    region: row.region,
  };
}

/** The region is the host's credential's (the token it joined with); a host without one (service creds) is the hub's. */
function selectHosts(db: Kysely<Database>, o: Online) {
  return db
    .selectFrom('hosts as h')
    .leftJoin('host_credentials as hc', 'hc.host_id', 'h.id')
    .select([
      'h.id',
      'h.apps',
      'h.running',
      'h.cores',
      'h.memory_mb',
      'h.worker_version',
      'h.heartbeat_interval_seconds',
      'h.first_seen',
      'h.last_seen',
      'h.usage',
      'h.device_group',
      'hc.region',
    ])
    .select(onlineSql('h', o).as('online'))
    .select(duplicateSql('h', o).as('duplicate'))
    .select(instancesSql('h', o).as('instances'));
}

export interface ListHostsOptions extends OnlineOptions {
  /** Only hosts that serve this app. */
  app?: string;
  status?: HostStatus;
  /** Hosts per page (default 100, at most 1000), by id. */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
}

export async function listHosts(db: Kysely<Database>, opts: ListHostsOptions): Promise<HostList> {
  const o = checkOnline(opts);
  const limit = clampLimit(opts.limit, 100, 1000);
  let q = selectHosts(db, o)
    .orderBy('h.id')
    .limit(limit + 1);
  if (opts.after !== undefined) q = q.where('h.id', '>', opts.after);
  if (opts.app !== undefined) q = q.where(sql<boolean>`${opts.app} = any(h.apps)`);
  if (opts.status !== undefined) q = q.where(opts.status === 'online' ? onlineSql('h', o) : sql<boolean>`not ${onlineSql('h', o)}`);
  const rows = (await q.execute()) as HostRow[];
  const page = rows.slice(0, limit);
  return { hosts: page.map((r) => toHost(r, o.n)), next: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
}

/** One host, or null when it has never sent a heartbeat. */
export async function getHost(db: Kysely<Database>, id: string, opts: OnlineOptions): Promise<Host | null> {
  const o = checkOnline(opts);
  const row = (await selectHosts(db, o).where('h.id', '=', id).executeTakeFirst()) as HostRow | undefined;
  return row ? toHost(row, o.n) : null;
}

/** How many known hosts are online and offline now. */
export async function countHosts(db: Kysely<Database>, opts: OnlineOptions): Promise<Record<HostStatus, number>> {
  const o = checkOnline(opts);
  const row = await db
    .selectFrom('hosts as h')
    .select([
      sql<number>`count(*) filter (where ${onlineSql('h', o)})::int`.as('online'),
      sql<number>`count(*) filter (where not ${onlineSql('h', o)})::int`.as('offline'),
    ])
    .executeTakeFirstOrThrow();
  return { online: row.online, offline: row.offline };
}
