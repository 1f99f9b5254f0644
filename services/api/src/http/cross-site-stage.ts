import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@nebula/service-kit';
import { crossSiteRefusal } from './cross-site.ts';
import type { Scheme } from './listener.ts';
import { sendJson } from './respond.ts';

/**
 * The cross-site stage, first of all for every route but /health (which only answers GET): a change
 * that a browser could have been made to send by another site's page (cross-site.ts) is answered
 * 403 or 415 before its credentials are checked and before its body is read. Refusing before auth
 * means the answer is the same with right, wrong or no credentials: it tells nothing about them, and
 * a forged request costs no credential check. The body, never read, is discarded by Node as for 401s.
 * Returns true when it answered.
 */
export function createCrossSiteStage(opts: { scheme: Scheme; allowedOrigins: ReadonlySet<string>; log: Logger }) {
  return (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    const refusal = crossSiteRefusal({ method: req.method ?? 'GET', headers: req.headers, scheme: opts.scheme, allowedOrigins: opts.allowedOrigins });
    if (refusal === null) return false;
    // Origin and Sec-Fetch-Site say where the page was (not secret; shortened); never other headers.
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin.slice(0, 200) : undefined;
    opts.log.debug({ method: req.method, path, status: refusal.status, origin, fetchSite: req.headers['sec-fetch-site'] }, 'request refused: cross-site rules');
    sendJson(res, refusal.status, refusal.body);
    return true;
  };
}
