import type { NebulaClient } from '@nebula/client';
import { UsageError } from './errors.ts';

/**
 * The flags of `nebula reports list` as `reports.list` takes them (the original's query
 * parameters), checked before anything is sent: a bad one is a UsageError (exit 2).
 */
export type ReportQuery = Extract<Parameters<NebulaClient['reports']['list']['query']>[0], object>;
const TIME_FILTERS = ['eq', 'gt', 'lt', 'gte', 'lte', 'ne'] as const;

/** `--time`: epoch seconds, or an ISO time (`2026-12-05T10:00:00Z`). */
export function parseReportTime(value: string): number {
  if (/^\d{1,12}$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(ms))
    throw new UsageError(`--time must be epoch seconds or an ISO time like 2026-12-05T10:00:00Z (got "${value}")`);
  return Math.floor(ms / 1000);
}

/** The filters of `reports list` as `reports.list` takes them; a bad one is a UsageError (exit 2). */
export function reportQueryOf(values: Record<string, unknown>): ReportQuery {
  const q: ReportQuery = {};
  const limit = values.limit;
  if (typeof limit === 'string') {
    if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)
      throw new UsageError(`--limit must be a whole number from 1 to 1000 (got "${limit}")`);
    q.page_size = Number(limit);
  }
  if (typeof values.after === 'string') q.last_id = values.after;
  if (typeof values.host === 'string') q.hostname = values.host;
  const groups = values['device-group'] as string[] | undefined;
  if (groups !== undefined) {
    if (groups.length > 1) throw new UsageError('"reports list" takes one --device-group');
    q.device_group = groups[0];
  }
  if (typeof values.time === 'string') q.report_creation_time = parseReportTime(values.time);
  const filter = values['time-filter'];
  if (typeof filter === 'string') {
    if (!(TIME_FILTERS as readonly string[]).includes(filter))
      throw new UsageError(`--time-filter must be one of ${TIME_FILTERS.join(', ')} (got "${filter}")`);
    if (q.report_creation_time === undefined) throw new UsageError('--time-filter goes with --time');
    q.report_creation_time_filter = filter as (typeof TIME_FILTERS)[number];
  }
  const updated = values.updated;
  if (typeof updated === 'string') {
    if (updated !== 'true' && updated !== 'false') throw new UsageError(`--updated must be true or false (got "${updated}")`);
    q.updated = updated === 'true';
  }
  return q;
}
