import { createHash, randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Users' secrets at rest. Passwords are chosen by people, so they are stored as scrypt hashes
 * (salted, memory-hard: a stolen table is slow to guess from). Tokens are random 32 bytes made here, or
 * at least MIN_SECRET_LENGTH characters given by an admin; they are stored as SHA-256, which lets a
 * bearer token be looked up by its hash with one indexed query instead of a slow check per user.
 * (The original bcrypt-checked a token against every user's hash: a request cost O(users).)
 */
const SCRYPT = { N: 2 ** 14, r: 8, p: 1, keylen: 32 } as const;

function derive(secret: string, salt: Buffer, o: { N: number; r: number; p: number; keylen: number }): Promise<Buffer> {
  const options: ScryptOptions = { N: o.N, r: o.r, p: o.p, maxmem: 128 * o.N * o.r * 2 };
  return new Promise((resolve, reject) => scrypt(secret, salt, o.keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$<salt>$<hash>`, base64url: the parameters travel with the hash, so they can grow later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** False for a wrong password and for a stored value that is not one of our hashes (never throws on it). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const want = Buffer.from(parts[5] ?? '', 'base64url');
  if (!N || !r || !p || N > 2 ** 20 || r > 32 || p > 16 || want.length < 16) return false;
  const got = await derive(password, salt, { N, r, p, keylen: want.length });
  return timingSafeEqual(got, want);
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random secret: 32 bytes, base64url (43 characters), prefixed so a leaked one is recognisable in a scan. */
export function newSecret(): string {
  return `nbu_${randomBytes(32).toString('base64url')}`;
}
