import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '@nebula/api';

/**
 * A typed client for the Nebula API, for other TypeScript services and scripts:
 *
 *   const nebula = createNebulaClient({ url: 'http://127.0.0.1:8080', username, password });
 *   const app = await nebula.apps.create.mutate({ name: 'web', docker_image: 'nginx:1.27' });
 *
 * Types come from the API's router (a type-only import: nothing of the API is loaded at run time).
 * Failures are TRPCClientError; the original's JSON body (`{"app_exists": false}`...) is on
 * `err.shape`, see `nebulaErrorBody`.
 */
export interface NebulaClientOptions {
  /** Base URL of the API, e.g. http://127.0.0.1:8080 (tRPC is served under /trpc). */
  url: string;
  username?: string;
  password?: string;
  /** Bearer token; used instead of basic auth when both are given. */
  token?: string;
  /** Extra headers (tracing...). */
  headers?: Record<string, string>;
}

export type NebulaClient = ReturnType<typeof createTRPCClient<AppRouter>>;

export function authorizationHeader(opts: Pick<NebulaClientOptions, 'username' | 'password' | 'token'>): string | undefined {
  if (opts.token) return `Bearer ${opts.token}`;
  if (opts.username !== undefined && opts.password !== undefined) return `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
  return undefined;
}

export function createNebulaClient(opts: NebulaClientOptions): NebulaClient {
  const auth = authorizationHeader(opts);
  const headers: Record<string, string> = { ...opts.headers, ...(auth ? { authorization: auth } : {}) };
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${opts.url.replace(/\/+$/, '')}/trpc`, headers })],
  });
}

export { TRPCClientError };

/** A failed call: `err.data.httpStatus`, and the original's body through `nebulaErrorBody(err)`. */
export type NebulaClientError = TRPCClientError<AppRouter>;

export function isNebulaClientError(err: unknown): err is NebulaClientError {
  return err instanceof TRPCClientError;
}

/** HTTP status of a failed call, also for answers that are not tRPC's (401 from the auth layer). */
export function httpStatusOf(err: unknown): number | undefined {
  if (!isNebulaClientError(err)) return undefined;
  return err.data?.httpStatus ?? (err.meta?.response as { status?: number } | undefined)?.status;
}

/** The compat body of a failed call (`{"app_exists": false}`, `{"errors": {...}}`...), if any. */
export function nebulaErrorBody(err: unknown): Record<string, unknown> | null {
  if (!(err instanceof TRPCClientError)) return null;
  const shape: unknown = err.shape;
  if (typeof shape !== 'object' || shape === null) return null;
  const { message: _m, code: _c, data: _d, ...rest } = shape as Record<string, unknown>;
  return rest;
}
