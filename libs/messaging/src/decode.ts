import type { z } from 'zod';

/** A message that can never be processed (bad JSON, wrong shape): terminate it, do not retry. */
export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError';
  readonly retryable = false;
}

/** Parses a NATS payload with a zod schema; `msg.json()` only casts. */
export function decode<S extends z.ZodType>(schema: S, data: Uint8Array, subject = '?'): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(data));
  } catch (cause) {
    throw new InvalidMessageError(`message on ${subject} is not JSON`, { cause });
  }
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
