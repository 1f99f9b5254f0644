import { z } from 'zod';
import { deviceGroupNameSchema } from './device-groups.ts';
import { hostIdSchema } from './names.ts';

/**
 * What hosts freed with image prunes (`POST /api/v2/device_groups/<dg>/prune`, `POST /api/v2/prune`),
 * as the notifier stored their PruneReports: `GET /api/v2/prunes?device_group=&prune_id=&host=&limit=`,
 * tRPC `prunes.list`, `nebula prunes list`. Newest prune first; `bytes_freed` is the total of every
 * matching report (not only of the page).
 */
export const PRUNE_LIST_LIMIT = { default: 1000, max: 10_000 } as const;

export const pruneListQuerySchema = z.strictObject({
  device_group: deviceGroupNameSchema.optional(),
  prune_id: z.number().int().positive().optional(),
  host: hostIdSchema.optional(),
  limit: z.number().int().min(1).max(PRUNE_LIST_LIMIT.max).default(PRUNE_LIST_LIMIT.default),
});
export type PruneListQuery = z.input<typeof pruneListQuerySchema>;

export const hostPruneSchema = z.object({
  host: z.string(),
  device_group: z.string(),
  prune_id: z.number().int(),
  bytes_freed: z.number().int().min(0),
  images_removed: z.array(z.string()),
  /** Why the host's prune failed (partly or wholly); null: it did not. */
  error: z.string().nullable(),
  /** When its report reached the bus (the server's clock). */
  reported_at: z.string(),
});
export type HostPrune = z.infer<typeof hostPruneSchema>;

export const pruneListSchema = z.object({ prunes: z.array(hostPruneSchema), bytes_freed: z.number().int().min(0) });
export type PruneList = z.infer<typeof pruneListSchema>;

const PARAMS = ['device_group', 'prune_id', 'host', 'limit'] as const;
const INTEGER = /^[0-9]{1,9}$/;

export type ParsedPruneQuery = { ok: true; value: z.output<typeof pruneListQuerySchema> } | { ok: false; errors: Record<string, string[]> };

/** The query string of `GET /api/v2/prunes` (pure): each parameter at most once, no other; errors name the parameter. */
export function parsePruneQuery(query: URLSearchParams): ParsedPruneQuery {
  const errors: Record<string, string[]> = {};
  const raw: Record<string, unknown> = {};
  for (const name of new Set(query.keys())) {
    const values = query.getAll(name);
    if (!(PARAMS as readonly string[]).includes(name)) errors[name] = [`unknown parameter (known: ${PARAMS.join(', ')})`];
    else if (values.length > 1) errors[name] = ['given more than once'];
    else if (name === 'prune_id' || name === 'limit') {
      const v = values[0] ?? '';
      if (INTEGER.test(v)) raw[name] = Number(v);
      else errors[name] = ['must be a whole number'];
    } else raw[name] = values[0];
  }
  const r = pruneListQuerySchema.safeParse(raw);
  if (!r.success) {
    for (const issue of r.error.issues) {
      const key = String(issue.path[0] ?? '(query)');
      errors[key] = [...(errors[key] ?? []), issue.message];
    }
  }
  if (Object.keys(errors).length > 0 || !r.success) return { ok: false, errors };
  return { ok: true, value: r.data };
}
