import { keyFingerprint } from '@nebula/bus-auth';
import { type HostCredential, hostCredentialSchema, type JoinRequest, type JoinTokenParts, type RenewRequest } from '@nebula/contracts';
import { WorkerError } from '../errors.ts';
import { type PostAnswer, PostTimeoutError, postJson } from './http-post.ts';

/**
 * The two calls a host makes to the control plane's HTTP API (see libs/contracts host-join.ts):
 * `POST /api/v2/hosts/join` once, `POST /api/v2/hosts/renew` at each start, before its JWT expires
 * and when a consumer is missing. Each has a deadline; an answer that is not a credential is an error.
 */
export interface ControlPlaneClient {
  join(req: JoinRequest): Promise<HostCredential>;
  renew(req: RenewRequest): Promise<HostCredential>;
}

/** The API could not be reached, did not answer in time, or failed (5xx): try again later. */
export class ControlPlaneUnavailableError extends WorkerError {
  override name = 'ControlPlaneUnavailableError';
  readonly retryable = true;
}

/** The API refused (4xx: an expired or used token, a revoked host, an app the token does not allow). */
export class ControlPlaneRefusedError extends WorkerError {
  override name = 'ControlPlaneRefusedError';
  readonly retryable = false;
  readonly status: number;
  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/** The API's key is not the one the join token names: this is not the control plane the token is for. */
export class ControlPlaneKeyMismatchError extends WorkerError {
  override name = 'ControlPlaneKeyMismatchError';
  readonly retryable = false;
}

/** What a 4xx JSON answer of the API says, in one line (`{error, message}` or `{errors: {field: [..]}}`). */
export function describeApiError(status: number, body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return `HTTP ${status}: ${body.slice(0, 300) || '(empty answer)'}`;
  }
  const o = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof o.error === 'string') parts.push(o.error);
  if (typeof o.message === 'string') parts.push(o.message);
  if (typeof o.errors === 'object' && o.errors !== null) {
    for (const [field, msgs] of Object.entries(o.errors as Record<string, unknown>))
      parts.push(`${field}: ${Array.isArray(msgs) ? msgs.join(', ') : String(msgs)}`);
  }
  return `HTTP ${status}: ${parts.length > 0 ? parts.join(': ') : body.slice(0, 300)}`;
}

/** The join answer's key must be the one the token names; otherwise the host talks to another API. */
export function checkJoinAnswer(token: Pick<JoinTokenParts, 'fingerprint'>, answer: HostCredential): HostCredential {
  if (keyFingerprint(answer.control_plane_key) !== token.fingerprint) {
    throw new ControlPlaneKeyMismatchError("the API's key does not match the join token: wrong NEBULA_URL?");
  }
  return answer;
}

export function httpControlPlaneClient(baseUrl: string, opts: { timeoutMs: number }): ControlPlaneClient {
  const url = (path: string) => new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).toString();
  async function post(path: string, body: unknown): Promise<HostCredential> {
    const target = url(path);
    let res: PostAnswer;
    try {
      res = await postJson(target, body, opts.timeoutMs);
    } catch (err) {
      const why = err instanceof PostTimeoutError ? err.message : errorCause(err);
      throw new ControlPlaneUnavailableError(`POST ${target}: ${why}`, { cause: err });
    }
    const text = res.text;
    if (res.status >= 500) throw new ControlPlaneUnavailableError(`POST ${target}: ${describeApiError(res.status, text)}`);
    if (res.status >= 300 && res.status < 400) {
      // Not followed: a POST carrying a join token goes only where NEBULA_URL says.
      throw new ControlPlaneRefusedError(
        `POST ${target} was redirected (HTTP ${res.status}) to ${res.location ?? '(no location)'}: set NEBULA_URL to the API's address`,
        res.status,
      );
    }
    if (res.status >= 400) throw new ControlPlaneRefusedError(`POST ${target} was refused: ${describeApiError(res.status, text)}`, res.status);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ControlPlaneUnavailableError(`POST ${target}: the answer is not JSON (HTTP ${res.status})`, { cause: err });
    }
    const parsed = hostCredentialSchema.safeParse(json);
    if (!parsed.success)
      throw new ControlPlaneUnavailableError(`POST ${target}: the answer is not a host credential (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    return parsed.data;
  }
  return {
    join: (req) => post('api/v2/hosts/join', req),
    renew: (req) => post('api/v2/hosts/renew', req),
  };
}

/** A socket error's code says what happened (ECONNREFUSED...). */
function errorCause(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const base = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && !base.includes(code) ? `${base} (${code})` : base;
}
