import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database, Kysely } from '@nebula/db';
import { ADMIN_PERMISSIONS, mergeGroups, type Permissions } from './access/permissions.ts';
import { hashPassword, hashToken, verifyPassword } from './access/secrets.ts';
import { findUserByName, findUserByTokenHash, groupsOfUser } from './db/users.ts';
import type { AttemptThrottle } from './http/attempt-throttle.ts';

/**
 * Who a request is. Two kinds of callers:
 *  - the local admin of the original Nebula, from the environment: `BASIC_AUTH_USER` +
 *    `BASIC_AUTH_PASSWORD` (HTTP basic) and/or `AUTH_TOKEN` (bearer); may do everything;
 *  - users (`/api/v2/users`), by password (basic) or token (bearer), with the rights of their groups.
 *
 * There is no anonymous caller: the original's `AUTH_ENABLED=false` is refused at start.
 *
 * Secrets of the local admin are compared as SHA-256 digests with `timingSafeEqual` (equal-length
 * inputs, so the time says nothing about how much of a guess was right). A user's password is
 * checked against its scrypt hash (slow on purpose); a proven credential is remembered for
 * `cacheMs` as the digest of its header, so a client that sends it on every request pays the check
 * once, and a change to users or groups clears what this replica remembers.
 */
export interface AuthSettings {
  basic: { user: string; password: string } | null;
  token: string | null;
}

export interface Identity {
  /** Who made a change, as recorded in history and messages. */
  name: string;
  method: 'basic' | 'bearer';
  kind: 'local-admin' | 'user';
  permissions: Permissions;
}

export class AuthConfigError extends Error {
  override name = 'AuthConfigError';
  readonly retryable = false;
  readonly variables: string[];
  constructor(message: string, variables: string[]) {
    super(message);
    this.variables = variables;
  }
}

/**
 * Builds the settings from the environment. No local admin at all would leave no way in (no user can
 * be made), and `AUTH_ENABLED=false` would let anyone in: both refuse to start.
 */
export function authSettings(env: {
  AUTH_ENABLED?: boolean | undefined;
  BASIC_AUTH_USER?: string | undefined;
  BASIC_AUTH_PASSWORD?: string | undefined;
  AUTH_TOKEN?: string | undefined;
}): AuthSettings {
  if (env.AUTH_ENABLED === false) {
    throw new AuthConfigError(
      'AUTH_ENABLED=false is not supported: every request must authenticate. Remove AUTH_ENABLED and set BASIC_AUTH_USER and BASIC_AUTH_PASSWORD, and/or AUTH_TOKEN',
      ['AUTH_ENABLED'],
    );
  }
  const user = env.BASIC_AUTH_USER;
  const password = env.BASIC_AUTH_PASSWORD;
  if ((user === undefined) !== (password === undefined)) {
    throw new AuthConfigError('BASIC_AUTH_USER and BASIC_AUTH_PASSWORD must be set together', ['BASIC_AUTH_USER', 'BASIC_AUTH_PASSWORD']);
  }
  const basic = user !== undefined && password !== undefined ? { user, password } : null;
  const token = env.AUTH_TOKEN ?? null;
  if (basic === null && token === null) {
    throw new AuthConfigError('no local admin is configured: set BASIC_AUTH_USER and BASIC_AUTH_PASSWORD, and/or AUTH_TOKEN', [
      'BASIC_AUTH_USER',
      'BASIC_AUTH_PASSWORD',
      'AUTH_TOKEN',
    ]);
  }
  return { basic, token };
}

/** What the API says about its auth, for the start-up log line: never the secrets themselves. */
export function describeAuth(s: AuthSettings): string {
  const parts: string[] = [];
  if (s.basic) parts.push(`basic (user "${s.basic.user}")`);
  if (s.token) parts.push('bearer token');
  return `local admin: ${parts.join(' + ')}; users from the database`;
}

/** The names users may not take: the local admin's (history would not tell them apart). */
export function reservedUserNames(s: AuthSettings): string[] {
  return [s.basic?.user, 'token'].filter((n): n is string => n !== undefined);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function same(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export const WWW_AUTHENTICATE = 'Basic realm="nebula", Bearer realm="nebula"';

type Credential = { scheme: 'bearer'; token: string } | { scheme: 'basic'; user: string; password: string };

/** The credential an `Authorization` header carries, or null for a malformed one. Never throws. */
export function parseAuthorization(header: string): Credential | null {
  const space = header.indexOf(' ');
  if (space <= 0) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') return value.length > 0 ? { scheme: 'bearer', token: value } : null;
  if (scheme !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { scheme: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The local admin a credential proves, or null. */
export function localAdmin(s: AuthSettings, c: Credential): Identity | null {
  if (c.scheme === 'bearer') {
    return s.token !== null && same(c.token, s.token) ? { name: 'token', method: 'bearer', kind: 'local-admin', permissions: ADMIN_PERMISSIONS } : null;
  }
  if (s.basic === null) return null;
  // Both compared every time (no short circuit), so a right user name does not answer faster.
  const userOk = same(c.user, s.basic.user);
  const passOk = same(c.password, s.basic.password);
  return userOk && passOk ? { name: s.basic.user, method: 'basic', kind: 'local-admin', permissions: ADMIN_PERMISSIONS } : null;
}

export type AuthOutcome =
  | { kind: 'ok'; identity: Identity }
  | { kind: 'missing' }
  | { kind: 'rejected' }
  /** Too many failed logins from this source or for this user: not even checked. */
  | { kind: 'throttled'; retryAfterSeconds: number };

export interface AuthenticatorOptions {
  settings: AuthSettings;
  db: Kysely<Database>;
  /** Failed logins per source address, and per user name. */
  throttle: { perSource: AttemptThrottle; perUser: AttemptThrottle };
  /** How long a proven user credential (and its rights) is remembered (default 5 s). */
  cacheMs?: number;
  now?: () => number;
}

const MAX_CACHED = 10_000;

let dummy: Promise<string> | undefined;
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}

export class Authenticator {
  private readonly cache = new Map<string, { identity: Identity; until: number }>();
  private readonly opts: AuthenticatorOptions;
  private readonly now: () => number;

  constructor(opts: AuthenticatorOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  get settings(): AuthSettings {
    return this.opts.settings;
  }

  /** Forgets every remembered credential: called after any change to users or groups. */
  forget(): void {
    this.cache.clear();
  }

  async authenticate(header: string | undefined, source: string): Promise<AuthOutcome> {
    if (header === undefined) return { kind: 'missing' };
    const c = parseAuthorization(header);
    const now = this.now();
    const keys = [`source:${source}`, ...(c?.scheme === 'basic' ? [`user:${c.user}`] : [])];
    const { perSource, perUser } = this.opts.throttle;
    const wait = Math.max(perSource.blockedForMs(keys[0] ?? '', now), keys[1] ? perUser.blockedForMs(keys[1], now) : 0);
    if (wait > 0) return { kind: 'throttled', retryAfterSeconds: Math.ceil(wait / 1000) };

    const identity = c === null ? null : (localAdmin(this.opts.settings, c) ?? (await this.user(header, c, now)));
    if (identity !== null) return { kind: 'ok', identity };
    perSource.recordFailure(keys[0] ?? '', now);
    if (keys[1]) perUser.recordFailure(keys[1], now);
    return { kind: 'rejected' };
  }

  private async user(header: string, c: Credential, now: number): Promise<Identity | null> {
    const key = digest(header).toString('base64');
    const cached = this.cache.get(key);
    if (cached && cached.until > now) return cached.identity;
    this.cache.delete(key);

    const { db } = this.opts;
    const stored = c.scheme === 'bearer' ? await findUserByTokenHash(db, hashToken(c.token)) : await findUserByName(db, c.user);
    if (c.scheme === 'basic') {
      // A name that is not a user costs the same check as a wrong password: the time does not tell which.
      const hash = stored?.password_hash ?? (await dummyHash());
      const ok = await verifyPassword(c.password, hash);
      if (!ok || stored?.password_hash == null) return null;
    }
    if (stored === null) return null;
    const identity: Identity = { name: stored.user_name, method: c.scheme, kind: 'user', permissions: mergeGroups(await groupsOfUser(db, stored.user_name)) };
    this.cache.set(key, { identity, until: now + (this.opts.cacheMs ?? 5000) });
    while (this.cache.size > MAX_CACHED) {
      const first = this.cache.keys().next().value;
      if (first === undefined) break;
      this.cache.delete(first);
    }
    return identity;
  }
}
