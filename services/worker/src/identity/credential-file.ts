import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostIdSchema } from '@nebula/contracts';
import { z } from 'zod';
import { WorkerError } from '../errors.ts';

/**
 * The host's bus identity on disk (`NEBULA_CREDENTIALS_FILE`): its key seed, its current JWT, the
 * control plane key it pinned at join. Mode 600, written whole or not at all (a temporary file in the
 * same folder, then a rename), so a crash mid-write never leaves half a key. The join token is never
 * in it: it is needed once.
 */
export const storedCredentialSchema = z.object({
  v: z.literal(1),
  host_id: hostIdSchema,
  /** Where it joined: renewals go there. */
  nebula_url: z.url(),
  /** `SU...`: the host's user key seed. It never leaves the host. */
  seed: z.string().regex(/^SU[A-Z2-7]+$/, 'must be a NATS user seed'),
  jwt: z.string().min(1),
  expires_at: z.string(),
  /** When this JWT was received: its lifetime is counted from here (renewed at two thirds). */
  received_at: z.string(),
  /** The control plane's message key (`N...`), pinned at join: app messages must verify against it. */
  control_plane_key: z.string().regex(/^N[A-Z2-7]{55}$/, 'must be a NATS server public key'),
  apps: z.array(z.string()),
  /** The device group it has a consumer and rights for (null or absent: none; files from before groups have none). */
  device_group: z.string().nullable().optional(),
});
export type StoredCredential = z.infer<typeof storedCredentialSchema>;

/** The file is unsafe (others can read it) or not ours to use: nothing a retry fixes. */
export class CredentialFileError extends WorkerError {
  override name = 'CredentialFileError';
  readonly retryable = false;
}

/** Null when the file does not exist. Refuses one that group or others can read, or that does not parse. */
export function readCredentialFile(path: string): StoredCredential | null {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CredentialFileError(`cannot read the credentials file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if ((mode & 0o077) !== 0) {
    throw new CredentialFileError(
      `the credentials file ${path} is readable by group or others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}): it holds this host's private key; run chmod 600 ${path}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CredentialFileError(`the credentials file ${path} is not valid JSON: remove it to join again`, { cause: err });
  }
  const parsed = storedCredentialSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CredentialFileError(
      `the credentials file ${path} is not a Nebula host credential (${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'})`,
    );
  }
  return parsed.data;
}

/** Writes it with mode 600, atomically: a reader sees the old file or the new one, never a mix. */
export function writeCredentialFile(path: string, cred: StoredCredential): void {
  const body = `${JSON.stringify(storedCredentialSchema.parse(cred), null, 2)}\n`;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  // 'wx': a new file, created with mode 600 (never a moment with wider rights).
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, body);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
