import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleOpsRequest, type Logger } from '@nebula/service-kit';
import type { Authenticator, Identity } from '../auth.ts';
import { API_ERROR_STATUS, apiErrorOf, RETRY_AFTER_SECONDS } from '../errors.ts';
import { authenticateRequest } from './auth-stage.ts';
import { isEnrolmentPath } from './enrolment-route.ts';
import { openApiDocument } from './openapi.ts';
import type { Ops } from './ops.ts';
import { readGuardedBody } from './request-guard.ts';
import { methodNotAllowed, sendJson } from './respond.ts';
import { isUiPath } from './ui-stage.ts';

/**
 * The order of the stages (see the picture in server.ts). Each stage answers the request itself when
 * it stops it; the body is read once, by the guard; what a stage throws is answered here.
 */
export interface PipelineStages {
  log: Logger;
  ops: Ops;
  /** True when it answered (a cross-site change refused). */
  crossSite(req: IncomingMessage, res: ServerResponse, path: string): boolean;
  enrolmentRoute(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
  auth: Authenticator;
  /** The identity the auth stage proved, for the context of the procedures. */
  identities: WeakMap<IncomingMessage, Identity>;
  maxBodyBytes: number;
  trpcRoute(req: IncomingMessage, res: ServerResponse, path: string, raw: string, identity: Identity): Promise<void>;
  restRoute(req: IncomingMessage, res: ServerResponse, path: string, raw: string): Promise<void>;
  /** The dashboard's files at /ui (ui-stage.ts), before auth: they hold no data. */
  ui?(req: IncomingMessage, res: ServerResponse, path: string): void;
}

function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** The ops stage: true when it answered (health, metrics, or 405 on them). */
function serveOps(req: IncomingMessage, res: ServerResponse, ops: Ops): boolean {
  if (handleOpsRequest(req, res, ops)) return true;
  methodNotAllowed(res, 'GET');
  return true;
}

/**
 * The error-mapping stage for what a route threw instead of answering: an expected failure (the
 * database not answering, outside a procedure) gets its status; anything else is logged once, 500.
 */
function answerUnexpected(log: Logger, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const expected = apiErrorOf(err);
  if (expected) {
    const headers: Record<string, string> = expected.retryable ? { 'retry-after': String(RETRY_AFTER_SECONDS) } : {};
    sendJson(res, API_ERROR_STATUS[expected.code], { message: expected.message, ...expected.body }, headers);
    return;
  }
  log.error({ err, method: req.method, path: (req.url ?? '').split('?')[0] }, 'unexpected error handling a request');
  sendJson(res, 500, { error: 'internal server error' });
}

export function createPipeline(s: PipelineStages): (req: IncomingMessage, res: ServerResponse) => void {
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const method = req.method ?? 'GET';
    if (path === '/health' || path === '/healthz') return void serveOps(req, res, s.ops);
    if (s.crossSite(req, res, path)) return;
    if (s.ui && isUiPath(path)) return s.ui(req, res, path);
    if (isEnrolmentPath(path)) return s.enrolmentRoute(req, res, path);

    const identity = await authenticateRequest(req, res, s.auth, s.log, path);
    if (identity === null) return;
    s.identities.set(req, identity);
    if (path === '/metrics') return void serveOps(req, res, s.ops);

    const raw = await readGuardedBody(req, res, s.maxBodyBytes);
    if (raw === null) return;

    if (path === '/openapi.json') {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET');
      return sendJson(res, 200, openApiDocument());
    }
    if (isUnder(path, '/trpc')) return s.trpcRoute(req, res, path, raw, identity);
    if (isUnder(path, '/api/v2')) return s.restRoute(req, res, path, raw);
    return sendJson(res, 404, { error: 'not found' });
  }
  return (req, res) => {
    handle(req, res).catch((err: unknown) => answerUnexpected(s.log, req, res, err));
  };
}
