import { readFileSync } from 'node:fs';
import type { ControlPlaneKeys } from '@nebula/bus-auth';
import { ConfigError } from '@nebula/service-kit';
import { z } from 'zod';

/**
 * The control plane's bus keys (`BUS_KEYS_FILE`, a JSON file of ControlPlaneKeys written by the
 * installation's setup): read once at start and checked field by field, so a wrong file is a config
 * error naming the variable and the field, never one that shows up at the first join. Values are
 * never echoed: they are private keys.
 */
const nkeySeed = (prefix: string, what: string) => z.string().regex(new RegExp(`^${prefix}[A-Z2-7]{56}$`), `must be ${what} (${prefix}...)`);

export const controlPlaneKeysSchema = z.object({
  account_public_key: z.string().regex(/^A[A-Z2-7]{55}$/, 'must be an account public key (A...)'),
  account_signing_seed: nkeySeed('SA', 'an account seed'),
  operator_signing_seed: nkeySeed('SO', 'an operator seed'),
  system_creds: z.string().includes('-----BEGIN NATS USER JWT-----', { message: 'must be the text of a creds file' }),
  message_signing_seed: nkeySeed('SN', 'a server key seed'),
}) satisfies z.ZodType<ControlPlaneKeys>;

/** Pure: the keys in a file's text, or a ConfigError saying what is wrong with it. */
export function parseControlPlaneKeys(text: string, variable = 'BUS_KEYS_FILE'): ControlPlaneKeys {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError(`${variable}: the file is not JSON`, [variable]);
  }
  const parsed = controlPlaneKeysSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.code === 'invalid_type' ? 'is missing or not a string' : i.message}`);
    throw new ConfigError(`${variable}: not the control plane's bus keys: ${problems.join('; ')}`, [variable]);
  }
  return parsed.data;
}

export function readControlPlaneKeys(path: string, variable = 'BUS_KEYS_FILE'): ControlPlaneKeys {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, [variable]);
  }
  return parseControlPlaneKeys(text, variable);
}

/** A file the variable names, read at start: a ConfigError naming the variable when it cannot be read. */
export function readConfigFile(path: string, variable: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, [variable]);
  }
}
