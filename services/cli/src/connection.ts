import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './errors.ts';

/**
 * Where the API is and who we are, first found wins:
 *   URL          --url, NEBULA_URL, http://127.0.0.1:8080
 *   credentials  --token | --user + --password (flags), then NEBULA_TOKEN | NEBULA_USER + NEBULA_PASSWORD,
 *                then the local admin that `npm start` made (user admin, password in
 *                .stack/api-admin-password of this repo), then none.
 */
export interface Connection {
  url: string;
  username?: string;
  password?: string;
  token?: string;
  /** Where the credentials came from, for --verbose style messages and tests. */
  source: 'flags' | 'env' | 'local admin' | 'none';
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
export const LOCAL_ADMIN_FILE = join(REPO_ROOT, '.stack', 'api-admin-password');

export interface ConnectionFlags {
  url?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
}

function checkUrl(url: string, from: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${from}: "${url}" is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`${from}: "${url}" must be an http:// or https:// URL`);
  return url.replace(/\/+$/, '');
}

export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv, localAdminFile = LOCAL_ADMIN_FILE): Connection {
  const url = flags.url !== undefined ? checkUrl(flags.url, '--url') : env.NEBULA_URL ? checkUrl(env.NEBULA_URL, 'NEBULA_URL') : DEFAULT_URL;
  if ((flags.user === undefined) !== (flags.password === undefined) && flags.token === undefined) {
    throw new UsageError('--user and --password go together');
  }
  if (flags.token !== undefined) return { url, token: flags.token, source: 'flags' };
  if (flags.user !== undefined && flags.password !== undefined) return { url, username: flags.user, password: flags.password, source: 'flags' };
  if (env.NEBULA_TOKEN) return { url, token: env.NEBULA_TOKEN, source: 'env' };
  if (env.NEBULA_USER || env.NEBULA_PASSWORD) {
    if (!env.NEBULA_USER || env.NEBULA_PASSWORD === undefined) throw new UsageError('NEBULA_USER and NEBULA_PASSWORD go together');
    return { url, username: env.NEBULA_USER, password: env.NEBULA_PASSWORD, source: 'env' };
  }
  if (existsSync(localAdminFile)) {
    const password = readFileSync(localAdminFile, 'utf8').trim();
    if (password) return { url, username: 'admin', password, source: 'local admin' };
  }
  return { url, source: 'none' };
}
