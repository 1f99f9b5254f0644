import { httpStatusOf, isNebulaClientError, nebulaErrorBody } from '@nebula/client';

/**
 * How the command ends. Scripts branch on these:
 *   0  done
 *   1  the API said no (4xx; "access denied" when the caller lacks the right), could not be reached,
 *      or an input file or a secret on standard input is wrong
 *   2  the command line itself is wrong (nothing was sent)
 *   3  a watched rollout ended without every expected host applying it: hosts failed, were offline
 *      or superseded, or no host was expected at all (complete is not succeeded)
 *   4  --timeout passed before the watched rollout was complete
 */
export const EXIT = { ok: 0, api: 1, usage: 2, rolloutFailed: 3, timedOut: 4 } as const;

/** The command line is wrong: nothing was sent. Not worth retrying as is. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly retryable = false;
}

/** What the command reads cannot be used: a secret on standard input (empty, more than one line), a cancelled prompt. */
export class InputError extends Error {
  override name = 'InputError';
  readonly retryable = false;
}

/** An input file cannot be used (missing, not JSON/YAML, not an object). */
export class InputFileError extends InputError {
  override name = 'InputFileError';
}

function causeChain(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; e instanceof Error && i < 5; i++) {
    const code = (e as { code?: unknown }).code;
    const text = typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
    if (text && parts.at(-1) !== text) parts.push(text);
    e = e.cause;
  }
  return parts.join(': ');
}

function isUnreachable(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|UND_ERR_SOCKET)$/.test(code))
      return true;
    if (e instanceof TypeError && /fetch failed/.test(e.message)) return true;
  }
  return false;
}

/** The lines to print for a failure, and the exit code. */
export function describeError(err: unknown, url: string): { lines: string[]; code: number } {
  if (err instanceof UsageError) return { lines: [`error: ${err.message}`, "run 'nebula --help' for usage"], code: EXIT.usage };
  if (err instanceof InputError) return { lines: [`error: ${err.message}`], code: EXIT.api };
  if (isUnreachable(err)) return { lines: [`error: cannot reach the Nebula API at ${url} (${causeChain(err)})`, 'set --url or NEBULA_URL'], code: EXIT.api };
  if (isNebulaClientError(err)) {
    const inMessage = /\((\d{3})\)/.exec(err.message);
    const status = httpStatusOf(err) ?? (inMessage ? Number(inMessage[1]) : undefined);
    if (status === 401) {
      return {
        lines: [
          `error: the API at ${url} refused the credentials (401)`,
          'give --user and --password (NEBULA_USER, NEBULA_PASSWORD) or --token (NEBULA_TOKEN)',
        ],
        code: EXIT.api,
      };
    }
    const body = nebulaErrorBody(err) ?? {};
    // The API's 403 `{"access_allowed": false}`: the caller may not do this (not an admin, no "rw" on the app...).
    const denied = body.access_allowed === false;
    const lines = [`error: ${denied ? 'access denied: ' : ''}${err.message}${status ? ` (HTTP ${status})` : ''}`];
    const { errors, ...flags } = body as { errors?: Record<string, string[]> };
    if (errors && typeof errors === 'object') for (const [field, msgs] of Object.entries(errors)) lines.push(`  ${field}: ${msgs.join('; ')}`);
    const rest = Object.entries(flags).filter(
      ([k, v]) => k !== 'missing_parameters' && !(denied && k === 'access_allowed') && !(k === 'error' && v === err.message),
    );
    if (rest.length > 0) lines.push(`  ${JSON.stringify(Object.fromEntries(rest))}`);
    return { lines, code: EXIT.api };
  }
  return { lines: [`error: ${causeChain(err) || String(err)}`], code: EXIT.api };
}
