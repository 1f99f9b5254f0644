import { z } from 'zod';

/** A message that can never be processed (bad JSON, wrong shape): terminate it, do not retry. */
export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError';
  readonly retryable = false;
}

/**
 * A message of a schema version newer than the reader's: well formed for all it can tell, but written
 * by newer code (the control plane or a worker upgraded before this reader). Never processed, like an
 * invalid one, but the reader says so in its own words ("upgrade the worker"), not "invalid".
 */
export class NewerVersionError extends InvalidMessageError {
  override name = 'NewerVersionError';
  /** The message's `v`. */
  readonly version: number;
  /** The newest version this reader understands. */
  readonly understood: number;
  constructor(subject: string, version: number, understood: number) {
    super(`message on ${subject} has schema version ${version}, newer than this reader understands (${understood})`);
    this.version = version;
    this.understood = understood;
  }
}

/**
 * The version a payload announces when it is newer than `understood`: an integer `v` above it. Null
 * for anything else (no `v`, not a number, not an integer, not newer): the schema judges those, and a
 * payload that is not even an object is malformed, not newer.
 */
export function newerVersion(raw: unknown, understood: number): number | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const v: unknown = (raw as { v?: unknown }).v;
  return typeof v === 'number' && Number.isSafeInteger(v) && v > understood ? v : null;
}

/**
 * The newest version a message schema understands: the largest number of its `v` literal (a schema
 * may read several), null for a schema without one.
 */
export function understoodVersion(schema: z.ZodType): number | null {
  if (!(schema instanceof z.ZodObject)) return null;
  const v: unknown = (schema.shape as Record<string, unknown>).v;
  if (!(v instanceof z.ZodLiteral)) return null;
  const numbers = [...v.values].filter((x): x is number => typeof x === 'number');
  return numbers.length === 0 ? null : Math.max(...numbers);
}

/**
 * Parses a NATS payload with a zod schema; `msg.json()` only casts. The one place that tells a
 * message of a newer schema version (NewerVersionError) from a malformed one (InvalidMessageError):
 * the version is looked at before the shape, since a newer shape is expected not to fit.
 */
export function decode<S extends z.ZodType>(schema: S, data: Uint8Array, subject = '?'): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(data));
  } catch (cause) {
    throw new InvalidMessageError(`message on ${subject} is not JSON`, { cause });
  }
  const understood = understoodVersion(schema);
  const newer = understood === null ? null : newerVersion(raw, understood);
  if (newer !== null && understood !== null) throw new NewerVersionError(subject, newer, understood);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InvalidMessageError(`message on ${subject} is invalid: ${what}`, { cause: parsed.error });
  }
  return parsed.data;
}

export function encode(value: unknown): string {
  return JSON.stringify(value);
}
