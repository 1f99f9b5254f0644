import type { IncomingMessage, ServerResponse } from 'node:http';
import { joinRequestSchema, renewRequestSchema } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import type { z } from 'zod';
import { API_ERROR_STATUS, apiErrorOf, EnrolmentRefusedError, fieldErrors, RETRY_AFTER_SECONDS, TooManyAttemptsError } from '../errors.ts';
import type { HostEnrolment } from '../hosts/host-enrolment.ts';
import type { AttemptThrottle } from './attempt-throttle.ts';
import { isPlainObject, parseJson } from './body.ts';
import { readGuardedBody } from './request-guard.ts';
import { methodNotAllowed, sendJson } from './respond.ts';

/**
 * `POST /api/v2/hosts/join` and `/renew`: served before the auth stage, since a host has no user
 * credential: the join token, or the host's signature, authenticates the request. Failed attempts
 * (bad body, refused token or signature) count per source address; over the limit the address gets
 * 429 before its request is even looked at. Nothing of the body (the token) is ever logged.
 */
export const ENROLMENT_PATHS = { '/api/v2/hosts/join': 'join', '/api/v2/hosts/renew': 'renew' } as const;

export function isEnrolmentPath(path: string): path is keyof typeof ENROLMENT_PATHS {
  return Object.hasOwn(ENROLMENT_PATHS, path);
}

export function createEnrolmentRoute(opts: { enrolment: HostEnrolment; throttle: AttemptThrottle; log: Logger; maxBodyBytes: number; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const answer = (res: ServerResponse, status: number, message: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    sendJson(res, status, { message, ...body }, headers);

  return async (req: IncomingMessage, res: ServerResponse, path: keyof typeof ENROLMENT_PATHS): Promise<void> => {
    const kind = ENROLMENT_PATHS[path];
    if (req.method !== 'POST') return methodNotAllowed(res, 'POST');
    // The peer's address, not X-Forwarded-For: a header anyone can set would let one client spread
    // its failures over made-up addresses.
    const source = req.socket.remoteAddress ?? 'unknown';
    const started = now();
    res.once('finish', () => opts.log.debug({ method: 'POST', path, status: res.statusCode, ms: now() - started }, 'request'));
    const blockedMs = opts.throttle.blockedForMs(source, started);
    if (blockedMs > 0) {
      const e = new TooManyAttemptsError(Math.ceil(blockedMs / 1000));
      return answer(res, 429, e.message, e.body, { 'retry-after': String(e.retryAfterSeconds) });
    }
    const raw = await readGuardedBody(req, res, opts.maxBodyBytes);
    if (raw === null) return;
    const json = parseJson(raw);
    const failed = () => opts.throttle.recordFailure(source, now());
    if (json.kind !== 'json' || !isPlainObject(json.value)) {
      failed();
      return answer(res, 400, 'a JSON object is required', { errors: { '(body)': [json.kind === 'malformed' ? json.reason : 'must be a JSON object'] } });
    }
    const schema: z.ZodType = kind === 'join' ? joinRequestSchema : renewRequestSchema;
    const parsed = schema.safeParse(json.value);
    if (!parsed.success) {
      failed();
      return answer(res, 400, `invalid ${kind} request`, { errors: fieldErrors(parsed.error.issues) });
    }
    try {
      const cred =
        kind === 'join'
          ? await opts.enrolment.join(parsed.data as z.output<typeof joinRequestSchema>)
          : await opts.enrolment.renew(parsed.data as z.output<typeof renewRequestSchema>);
      return sendJson(res, 200, cred);
    } catch (err) {
      const e = err instanceof EnrolmentRefusedError ? err : apiErrorOf(err);
      if (!e) throw err;
      if (err instanceof EnrolmentRefusedError) {
        failed();
        opts.log.info({ source, refusal: err.refusal, host: (json.value as { host_id?: unknown }).host_id }, `host ${kind} refused`);
      }
      const headers: Record<string, string> = e.retryable ? { 'retry-after': String(RETRY_AFTER_SECONDS) } : {};
      return answer(res, API_ERROR_STATUS[e.code], e.message, e.body, headers);
    }
  };
}
