import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@nebula/service-kit';
import { type Authenticator, type Identity, WWW_AUTHENTICATE } from '../auth.ts';
import { sendJson } from './respond.ts';

/**
 * The auth stage: the identity the request's credentials prove, or null after answering 401 JSON
 * with WWW-Authenticate (none or wrong credentials) or 429 (too many failed logins from this address
 * or for this user: not even checked). Also writes the one debug line per request: never headers or
 * query (credentials, tRPC inputs), only method, path, status and user.
 *
 * The source is the TCP peer: behind a proxy every client shares the proxy's address, so the
 * per-source limit then counts them together (the per-user limit still holds).
 */
export async function authenticateRequest(req: IncomingMessage, res: ServerResponse, auth: Authenticator, log: Logger, path: string): Promise<Identity | null> {
  const method = req.method ?? 'GET';
  const started = Date.now();
  const outcome = await auth.authenticate(req.headers.authorization, req.socket.remoteAddress ?? 'unknown');
  const identity = outcome.kind === 'ok' ? outcome.identity : null;
  res.once('finish', () => {
    const fields = {
      method,
      path,
      status: res.statusCode,
      ms: Date.now() - started,
      user: identity?.name,
      credentials: outcome.kind === 'ok' ? undefined : outcome.kind === 'missing' ? 'none' : outcome.kind,
    };
    log.debug(fields, 'request');
  });
  if (outcome.kind === 'throttled') {
    sendJson(
      res,
      429,
      {
        error: 'too many failed logins',
        message: `too many failed logins: try again in ${outcome.retryAfterSeconds} s`,
        retry_after_seconds: outcome.retryAfterSeconds,
      },
      { 'retry-after': String(outcome.retryAfterSeconds) },
    );
  } else if (identity === null) {
    const challenge: Record<string, string> = challengesBrowser(req.headers) ? { 'www-authenticate': WWW_AUTHENTICATE } : {};
    sendJson(res, 401, { error: 'unauthorized', message: 'basic or bearer credentials are required' }, challenge);
  }
  return identity;
}

/**
 * Whether a 401 carries WWW-Authenticate. Not for a page's own fetch (`Sec-Fetch-Dest: empty`, as
 * the dashboard's calls): a browser answers a Basic challenge there with its native login prompt,
 * and holds the call until it is dismissed, where the page wants the 401 to say "wrong password"
 * itself. Every other caller (curl, SDKs, a browser opening the URL) still gets the challenge.
 */
export function challengesBrowser(headers: IncomingMessage['headers']): boolean {
  return headers['sec-fetch-dest'] !== 'empty';
}
