import { appConfigSchema } from '@nebula/contracts';
import type { z } from 'zod';

/**
 * An app config typed as JSON, checked with the API's own schema (appConfigSchema of
 * @nebula/contracts, which apps.create and apps.update take) before it is sent: the errors are by
 * field, to show beside it. The API checks again; its errors are shown the same way.
 */
export interface FieldError {
  /** The top-level field, or "" for the document itself (not JSON, not an object). */
  field: string;
  /** The path below the field (`ports.0`), when deeper. */
  path: string;
  message: string;
}

export type Validated = { ok: true; config: Record<string, unknown> } | { ok: false; errors: FieldError[] };

/**
 * `schema`: the app config's (default), or another document's, e.g. cronJobConfigSchema for a cron
 * job; `what` names it in the messages.
 */
export function validateConfigText(text: string, schema: z.ZodType = appConfigSchema, what = 'an app config'): Validated {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [{ field: '', path: '', message: `not JSON: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, errors: [{ field: '', path: '', message: 'the config is a JSON object: {"docker_image": "..."}' }] };
  }
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, config: value as Record<string, unknown> };
  const errors = r.error.issues.flatMap((i): FieldError[] => {
    // An unknown key is reported on the object: name each key as its own field.
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ field: k, path: '', message: `not a field of ${what}` }));
    const [field, ...rest] = i.path.map(String);
    return [{ field: field ?? '', path: rest.join('.'), message: i.message }];
  });
  return { ok: false, errors };
}

/** The errors of the API's answer (`{"errors": {"field": ["message"]}}` or `{"missing_parameters": [...]}`), by field. */
export function apiFieldErrors(body: Record<string, unknown> | null): FieldError[] {
  if (!body) return [];
  const out: FieldError[] = [];
  const errors = body.errors;
  if (typeof errors === 'object' && errors !== null) {
    for (const [field, v] of Object.entries(errors)) {
      for (const m of Array.isArray(v) ? v : [v]) out.push({ field, path: '', message: String(m) });
    }
  }
  if (Array.isArray(body.missing_parameters)) for (const f of body.missing_parameters) out.push({ field: String(f), path: '', message: 'required' });
  return out;
}
