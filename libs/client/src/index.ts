import type { AppRouter } from '@nebula/api';
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client';
import { EventSource } from 'eventsource';

/**
 * A typed client for the Nebula API, for other TypeScript services and scripts:
 *
 *   const nebula = createNebulaClient({ url: 'http://127.0.0.1:8080', username, password });
 *   const app = await nebula.apps.create.mutate({ name: 'web', docker_image: 'nginx:1.27' });
 *   nebula.rollouts.watch.subscribe({ id: app.rollout_id }, { onData: (p) => ..., onComplete: () => ... });
 *   const { token, command } = await nebula.hosts.joinTokens.create.mutate({ ttl_seconds: 3600, apps: ['web'] });
 *   await nebula.hosts.revoke.mutate({ id: 'host-7' });
 *
 * Queries and mutations go over plain HTTP (httpLink); subscriptions over server-sent events
 * (httpSubscriptionLink). Node has no EventSource of its own, and the browser's cannot send headers,
 * so SSE uses the `eventsource` package with a fetch that adds the same Authorization header.
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
  if (opts.username !== undefined && opts.password !== undefined) return `Basic ${base64Utf8(`${opts.username}:${opts.password}`)}`;
  return undefined;
}

/** Base64 of the UTF-8 bytes, without Node's Buffer: the client also runs in the browser (the dashboard). */
function base64Utf8(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function createNebulaClient(opts: NebulaClientOptions): NebulaClient {
  const auth = authorizationHeader(opts);
  const headers: Record<string, string> = { ...opts.headers, ...(auth ? { authorization: auth } : {}) };
  const url = `${opts.url.replace(/\/+$/, '')}/trpc`;
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url,
          EventSource,
          eventSourceOptions: () => ({
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
          }),
        }),
        false: httpLink({ url, headers }),
      }),
    ],
  });
}

type Answer<F extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<F>>;
/** What the procedures answer (inferred from the router through the client). */
export type RolloutProgress = Answer<NebulaClient['rollouts']['get']['query']>;
export type RolloutList = Answer<NebulaClient['rollouts']['list']['query']>;
export type RolloutSummary = RolloutList['rollouts'][number];
export type Host = Answer<NebulaClient['hosts']['get']['query']>;
export type HostList = Answer<NebulaClient['hosts']['list']['query']>;
/** A join token as listed (never its secret) and as created (the token, shown once, and the command to run). */
export type JoinToken = Answer<NebulaClient['hosts']['joinTokens']['list']['query']>['join_tokens'][number];
export type JoinTokenCreated = Answer<NebulaClient['hosts']['joinTokens']['create']['mutate']>;
export type HostRevoked = Answer<NebulaClient['hosts']['revoke']['mutate']>;
/** An app with its latest rollout, as `apps.get` answers it. */
export type AppWithRollout = Answer<NebulaClient['apps']['get']['query']>;
/** A user as the API answers it: whether a password and a token are set, never them. */
export type UserDoc = Answer<NebulaClient['users']['get']['query']>;
/** A user group: members, per-app (device group, cron job) "ro"/"rw", admin and the other switches. */
export type UserGroup = Answer<NebulaClient['userGroups']['get']['query']>;
/** A page of host reports (`reports.list`), and one report: usage of the host and of each container. */
export type ReportPage = Answer<NebulaClient['reports']['list']['query']>;
export type Report = NonNullable<ReportPage['data']>[number];
/** A cron job as the API answers it (the original's fields, timezone, timeout_seconds). */
export type CronJob = Answer<NebulaClient['cronJobs']['get']['query']>;
/** A cron job's runs, newest first. */
export type CronJobRuns = Answer<NebulaClient['cronJobs']['runs']['query']>;
/** A device group (`deviceGroups.get`): its apps and cron jobs by name, device_group_id, prune_id. */
export type DeviceGroup = Answer<NebulaClient['deviceGroups']['get']['query']>;
/** A group as a change answers it: the group, the rollout tracking the change, the hosts expected to apply it. */
export type DeviceGroupChanged = Answer<NebulaClient['deviceGroups']['update']['mutate']>;
/** `deviceGroups.info`: the group's apps and cron jobs in full (the original's /info). */
export type DeviceGroupInfo = Answer<NebulaClient['deviceGroups']['info']['query']>;
/** An app as the actions answer it. */
export type AppDoc = Answer<NebulaClient['apps']['stop']['mutate']>;

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

/**
 * Follows a rollout until it is complete: `onProgress` gets every change, the promise the last
 * progress. Rejects with the API's error (unknown rollout, credentials refused) or when `signal`
 * aborts. Connection losses are retried by the link (the server sends the current state again).
 */
export function watchRollout(
  nebula: NebulaClient,
  id: string,
  onProgress: (p: RolloutProgress) => void = () => undefined,
  signal?: AbortSignal,
): Promise<RolloutProgress> {
  return new Promise((resolve, reject) => {
    let last: RolloutProgress | null = null;
    const sub = nebula.rollouts.watch.subscribe(
      { id },
      {
        onData(p) {
          last = p;
          onProgress(p);
        },
        onError(err) {
          signal?.removeEventListener('abort', abort);
          reject(err);
        },
        onComplete() {
          signal?.removeEventListener('abort', abort);
          if (last?.complete) resolve(last);
          else reject(new WatchEndedError(id));
        },
      },
    );
    function abort() {
      sub.unsubscribe();
      reject(signal?.reason ?? new Error('aborted'));
    }
    if (signal?.aborted) abort();
    else signal?.addEventListener('abort', abort, { once: true });
  });
}

/** The server ended a watch before the rollout was complete (it is shutting down): watch again. */
export class WatchEndedError extends Error {
  override name = 'WatchEndedError';
  readonly retryable = true;
  constructor(id: string) {
    super(`the watch of rollout ${id} ended before the rollout was complete (server stopping?)`);
  }
}
