import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The local admin of the original Nebula: `BASIC_AUTH_USER` + `BASIC_AUTH_PASSWORD` (HTTP basic) and/or
 * `AUTH_TOKEN` (bearer). With `AUTH_ENABLED=false` every request is let in as "anonymous".
 *
 * Secrets are compared as SHA-256 digests with `timingSafeEqual`: equal-length inputs, so the time
 * taken says nothing about how much of a guess was right (nor about the secret's length).
 */
export interface AuthSettings {
  enabled: boolean;
  basic: { user: string; password: string } | null;
  token: string | null;
}

export interface Identity {
  /** Who made a change, as recorded in history and messages. */
  name: string;
  method: 'basic' | 'bearer' | 'none';
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
 * Builds the settings from the environment. Auth enabled with no credential at all would lock every
 * client out (or, worse, tempt someone to skip the check), so it refuses to start instead.
 */
export function authSettings(env: {
  AUTH_ENABLED: boolean;
  BASIC_AUTH_USER?: string | undefined;
  BASIC_AUTH_PASSWORD?: string | undefined;
  AUTH_TOKEN?: string | undefined;
}): AuthSettings {
  const user = env.BASIC_AUTH_USER;
  const password = env.BASIC_AUTH_PASSWORD;
  if ((user === undefined) !== (password === undefined)) {
    throw new AuthConfigError('BASIC_AUTH_USER and BASIC_AUTH_PASSWORD must be set together', ['BASIC_AUTH_USER', 'BASIC_AUTH_PASSWORD']);
  }
  const basic = user !== undefined && password !== undefined ? { user, password } : null;
  const token = env.AUTH_TOKEN ?? null;
  if (env.AUTH_ENABLED && basic === null && token === null) {
    throw new AuthConfigError(
      'AUTH_ENABLED is true but no credentials are configured: set BASIC_AUTH_USER and BASIC_AUTH_PASSWORD, and/or AUTH_TOKEN (or AUTH_ENABLED=false to run without auth)',
      ['AUTH_ENABLED', 'BASIC_AUTH_USER', 'BASIC_AUTH_PASSWORD', 'AUTH_TOKEN'],
    );
  }
  return { enabled: env.AUTH_ENABLED, basic, token };
}

/** What the API says about its auth, for the start-up log line: never the secrets themselves. */
export function describeAuth(s: AuthSettings): string {
  if (!s.enabled) return 'disabled (AUTH_ENABLED=false): every request is allowed';
  const parts: string[] = [];
  if (s.basic) parts.push(`basic (user "${s.basic.user}")`);
  if (s.token) parts.push('bearer token');
  return parts.join(' + ');
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function same(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export const WWW_AUTHENTICATE = 'Basic realm="nebula", Bearer realm="nebula"';

/**
 * The identity an `Authorization` header proves, or null. Never throws on malformed input and never
 * echoes it.
 */
export function authenticate(s: AuthSettings, header: string | undefined): Identity | null {
  if (!s.enabled) return { name: 'anonymous', method: 'none' };
  if (header === undefined) return null;
  const space = header.indexOf(' ');
  if (space <= 0) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') {
    if (s.token === null) return null;
    return same(value, s.token) ? { name: 'token', method: 'bearer' } : null;
  }
  if (scheme === 'basic') {
    if (s.basic === null) return null;
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    // Both compared every time (no short circuit), so a right user name does not answer faster.
    const userOk = same(decoded.slice(0, colon), s.basic.user);
    const passOk = same(decoded.slice(colon + 1), s.basic.password);
    return userOk && passOk ? { name: s.basic.user, method: 'basic' } : null;
  }
  return null;
}
