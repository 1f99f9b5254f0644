import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@nebula/service-kit';
import { type AuthSettings, authenticate, type Identity, WWW_AUTHENTICATE } from '../auth.ts';
import { sendJson } from './respond.ts';

/**
 * The auth stage: the identity the request's credentials prove, or null after answering 401 JSON
 * with WWW-Authenticate. Also writes the one debug line per request: never headers or query
 * (credentials, tRPC inputs), only method, path, status and user.
 */
export function authenticateRequest(req: IncomingMessage, res: ServerResponse, auth: AuthSettings, log: Logger, path: string): Identity | null {
  const method = req.method ?? 'GET';
  const identity = authenticate(auth, req.headers.authorization);
  const started = Date.now();
  res.once('finish', () => {
    const fields = {
      method,
      path,
      status: res.statusCode,
      ms: Date.now() - started,
      user: identity?.name,
      credentials: identity ? undefined : req.headers.authorization === undefined ? 'none' : 'rejected',
    };
    log.debug(fields, 'request');
  });
  if (identity === null) {
    sendJson(res, 401, { error: 'unauthorized', message: 'basic or bearer credentials are required' }, { 'www-authenticate': WWW_AUTHENTICATE });
  }
  return identity;
}
