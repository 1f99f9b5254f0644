import { type HostUsage, type Report, type ReportPage, type ReportQuery, type ReportTimeFilter, reportIdOfOid, reportOid } from '@nebula/contracts';
import { type Expression, type Kysely, type SqlBool, sql } from 'kysely';
import type { Database } from './database.ts';
import { iso } from './query-input.ts';

/**
 * Host reports, paged by id (ascending) as the original pages them. `report_creation_time` is whole
 * seconds of `created_at`; each filter is a range over `created_at`, so the index serves it:
 * `eq t` is [t, t+1), `gt t` is from t+1 on, `lte t` before t+1, `ne t` outside [t, t+1).
 */
interface ReportRow {
  id: string;
  host: string;
  device_group: string | null;
  created_at: Date;
  inserted_at: Date;
  updated: boolean;
  usage: unknown;
}

const MB = 1024 * 1024;

export function toReport(row: ReportRow): Report {
  // Written only from heartbeats that passed heartbeatSchema.
  const usage = (typeof row.usage === 'string' ? JSON.parse(row.usage) : row.usage) as HostUsage;
  const { containers, ...host } = usage;
  const mb = (n: number) => Math.round(n / MB);
  return {
    _id: { $oid: reportOid(row.id) },
    hostname: row.host,
    device_group: row.device_group,
    report_creation_time: Math.floor(new Date(row.created_at).getTime() / 1000),
    updated: row.updated,
    host,
    apps_containers: containers,
    cpu_usage: { cores: host.cpu.cores, used_percent: host.cpu.used_percent },
    memory_usage: { total: mb(host.memory.total_bytes), used: mb(host.memory.used_bytes), free: mb(host.memory.total_bytes - host.memory.used_bytes) },
    root_disk_usage:
      host.disk === null ? null : { total: mb(host.disk.total_bytes), used: mb(host.disk.used_bytes), free: mb(host.disk.total_bytes - host.disk.used_bytes) },
    report_insert_date: iso(row.inserted_at),
  };
}

function timeFilter(filter: ReportTimeFilter, seconds: number): Expression<SqlBool> {
  const from = new Date(seconds * 1000);
  const to = new Date((seconds + 1) * 1000);
  switch (filter) {
    case 'eq':
      return sql<SqlBool>`(r.created_at >= ${from} and r.created_at < ${to})`;
    case 'ne':
      return sql<SqlBool>`(r.created_at < ${from} or r.created_at >= ${to})`;
    case 'gt':
      return sql<SqlBool>`r.created_at >= ${to}`;
    case 'gte':
      return sql<SqlBool>`r.created_at >= ${from}`;
    case 'lt':
      return sql<SqlBool>`r.created_at < ${from}`;
    case 'lte':
      return sql<SqlBool>`r.created_at < ${to}`;
  }
}

export async function listReports(db: Kysely<Database>, q: ReportQuery): Promise<ReportPage> {
  let query = db
    .selectFrom('host_reports as r')
    .select(['r.id', 'r.host', 'r.device_group', 'r.created_at', 'r.inserted_at', 'r.updated', 'r.usage'])
    .orderBy('r.id')
    .limit(q.page_size);
  if (q.last_id !== undefined) query = query.where('r.id', '>', reportIdOfOid(q.last_id));
  if (q.hostname !== undefined) query = query.where('r.host', '=', q.hostname);
  if (q.device_group !== undefined) query = query.where('r.device_group', '=', q.device_group);
  if (q.updated !== undefined) query = query.where('r.updated', '=', q.updated);
  if (q.report_creation_time !== undefined) query = query.where(timeFilter(q.report_creation_time_filter, q.report_creation_time));
  const rows = (await query.execute()) as ReportRow[];
  if (rows.length === 0) return { data: null, last_id: null };
  const data = rows.map(toReport);
  return { data, last_id: data.at(-1)?._id ?? null };
}
