import { z } from 'zod';
import { containerUsageSchema, hostUsageSchema } from './usage.ts';

/**
 * `GET /api/v2/reports`, in the original's shape and paging: reports sorted by id, `page_size` of
 * them after `last_id`; the reply's `last_id` is `{"$oid": "<id>"}` and the client sends its string
 * back. Our ids are a bigserial; their string form is the number in 24 lower-case hex digits,
 * zero-padded, so it reads like the original's ObjectId (SDKs that check for 24 hex digits take it)
 * and sorts like the number. Only that form is accepted back (any case).
 *
 * Unlike the original (a bad `last_id` was a 500), every bad parameter is a 400 naming it, and so
 * are unknown or repeated ones (a mistyped filter would otherwise return reports it meant to leave
 * out).
 */
export const REPORT_TIME_FILTERS = ['eq', 'gt', 'lt', 'gte', 'lte', 'ne'] as const;
export type ReportTimeFilter = (typeof REPORT_TIME_FILTERS)[number];
export const REPORT_PAGE_SIZE = { default: 10, max: 1000 } as const;

const OID = /^[0-9a-fA-F]{24}$/;
/** The largest bigserial (PostgreSQL bigint). */
const MAX_ID = (1n << 63n) - 1n;

export const reportOidSchema = z
  .string()
  .regex(OID, 'must be 24 hex digits, the last_id.$oid of the previous page')
  .refine((s) => !OID.test(s) || BigInt(`0x${s}`) <= MAX_ID, 'is beyond the largest report id');

/** The string form of a report id (bigserial, as PostgreSQL returns it: a decimal string). */
export function reportOid(id: string | bigint): string {
  return BigInt(id).toString(16).padStart(24, '0');
}

/** The report id (decimal, for SQL) of a string form that passed `reportOidSchema`. */
export function reportIdOfOid(oid: string): string {
  return BigInt(`0x${oid}`).toString(10);
}

const filterText = z.string().min(1, 'must not be empty').max(253);

/** What `reports.list` takes (tRPC), and what the REST query string parses into. */
export const reportQuerySchema = z.strictObject({
  page_size: z.number().int().min(1).max(REPORT_PAGE_SIZE.max).default(REPORT_PAGE_SIZE.default),
  last_id: reportOidSchema.optional(),
  hostname: filterText.optional(),
  device_group: filterText.optional(),
  /** Epoch seconds; compared with each report's (whole-second) `report_creation_time`. */
  report_creation_time: z.number().int().min(0).max(253_402_300_799).optional(),
  report_creation_time_filter: z.enum(REPORT_TIME_FILTERS).default('eq'),
  updated: z.boolean().optional(),
});
export type ReportQueryInput = z.input<typeof reportQuerySchema>;
export type ReportQuery = z.output<typeof reportQuerySchema>;

const PARAMS = Object.keys(reportQuerySchema.shape) as (keyof ReportQuery)[];
const INTEGER = /^[0-9]{1,16}$/;
const BOOLEANS: Record<string, boolean> = { True: true, true: true, False: false, false: false };

export type ParsedReportQuery = { ok: true; value: ReportQuery } | { ok: false; errors: Record<string, string[]> };

/**
 * The query string of `GET /api/v2/reports` (pure): integers for `page_size` and
 * `report_creation_time`, `True`/`False` (as the original's Python clients send them) or
 * `true`/`false` for `updated`, each parameter at most once, no other. Errors name the parameter.
 */
export function parseReportQuery(query: URLSearchParams): ParsedReportQuery {
  const errors: Record<string, string[]> = {};
  const raw: Record<string, unknown> = {};
  for (const name of new Set(query.keys())) {
    const values = query.getAll(name);
    if (!(PARAMS as string[]).includes(name)) {
      errors[name] = [`unknown parameter (known: ${PARAMS.join(', ')})`];
      continue;
    }
    if (values.length > 1) {
      errors[name] = ['given more than once'];
      continue;
    }
    const v = values[0] ?? '';
    if (name === 'page_size' || name === 'report_creation_time') {
      if (!INTEGER.test(v)) errors[name] = ['must be a whole number'];
      else raw[name] = Number(v);
    } else if (name === 'updated') {
      const b = BOOLEANS[v];
      if (b === undefined) errors[name] = ['must be True or False (or true, false)'];
      else raw[name] = b;
    } else raw[name] = v;
  }
  const r = reportQuerySchema.safeParse(raw);
  if (!r.success) {
    for (const issue of r.error.issues) {
      const key = String(issue.path[0] ?? '(query)');
      errors[key] = [...(errors[key] ?? []), issue.message];
    }
  }
  if (Object.keys(errors).length > 0 || !r.success) return { ok: false, errors };
  return { ok: true, value: r.data };
}

const oid = z.object({ $oid: z.string() });

/** One report as `GET /api/v2/reports` lists it. */
export const reportSchema = z.object({
  _id: oid,
  hostname: z.string(),
  device_group: z.string().nullable(),
  /** Epoch seconds: when the heartbeat that carried the sample reached the bus (the server's clock). */
  report_creation_time: z.number().int(),
  /** The host's running revisions changed since its previous report (its first report: true). */
  updated: z.boolean(),
  host: hostUsageSchema.omit({ containers: true }),
  apps_containers: z.array(containerUsageSchema),
  /** The original's summaries, in MB as it had them. */
  cpu_usage: z.object({ cores: z.number().int(), used_percent: z.number().nullable() }),
  memory_usage: z.object({ total: z.number().int(), used: z.number().int(), free: z.number().int() }),
  root_disk_usage: z.object({ total: z.number().int(), used: z.number().int(), free: z.number().int() }).nullable(),
  /** When the notifier stored it (ISO time, UTC). */
  report_insert_date: z.iso.datetime(),
});
export type Report = z.infer<typeof reportSchema>;

/** A page; an empty one is `{"data": null, "last_id": null}`, as the original's. */
export const reportPageSchema = z.object({ data: z.array(reportSchema).nullable(), last_id: oid.nullable() });
export type ReportPage = z.infer<typeof reportPageSchema>;
