import { DatabaseUnavailableError, QueryInputError, RolloutConflictError } from '@nebula/db';
import type { z } from 'zod';

/**
 * Expected failures of the API's procedures. Each carries the tRPC code it maps to and the JSON body
 * the original Nebula answered with (`{"app_exists": false}`...), which REST clients and SDKs match on.
 * Only ServiceUnavailableError is worth retrying as is. Anything else that is thrown is unexpected:
 * logged once, answered 500. `apiErrorOf` is the one place that turns the data layer's errors into these.
 */
export type ApiErrorCode = 'BAD_REQUEST' | 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_FOUND' | 'CONFLICT' | 'TOO_MANY_REQUESTS' | 'SERVICE_UNAVAILABLE';

/** The HTTP status of each code, for the routes that answer without tRPC's mapping (v2-routes.ts). */
export const API_ERROR_STATUS: Record<ApiErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_MANY_REQUESTS: 429,
  SERVICE_UNAVAILABLE: 503,
};

export abstract class ApiError extends Error {
  abstract readonly code: ApiErrorCode;
  abstract readonly body: Record<string, unknown>;
  readonly retryable: boolean = false;
}

export class AppNotFoundError extends ApiError {
  override name = 'AppNotFoundError';
  readonly code = 'FORBIDDEN';
  readonly body = { app_exists: false };
  constructor(app: string) {
    super(`app "${app}" does not exist`);
  }
}

export class AppExistsError extends ApiError {
  override name = 'AppExistsError';
  readonly code = 'FORBIDDEN';
  readonly body = { app_exists: true };
  constructor(app: string, options?: ErrorOptions) {
    super(`app "${app}" already exists`, options);
  }
}

export class CronJobNotFoundError extends ApiError {
  override name = 'CronJobNotFoundError';
  readonly code = 'FORBIDDEN';
  readonly body = { cron_job_exists: false };
  constructor(job: string) {
    super(`cron job "${job}" does not exist`);
  }
}

export class CronJobExistsError extends ApiError {
  override name = 'CronJobExistsError';
  readonly code = 'FORBIDDEN';
  readonly body = { cron_job_exists: true };
  constructor(job: string, options?: ErrorOptions) {
    super(`cron job "${job}" already exists`, options);
  }
}

export class DeviceGroupNotFoundError extends ApiError {
  override name = 'DeviceGroupNotFoundError';
  readonly code = 'FORBIDDEN';
  readonly body = { device_group_exists: false };
  constructor(group: string) {
    super(`device group "${group}" does not exist`);
  }
}

export class DeviceGroupExistsError extends ApiError {
  override name = 'DeviceGroupExistsError';
  readonly code = 'FORBIDDEN';
  readonly body = { device_group_exists: true };
  constructor(group: string, options?: ErrorOptions) {
    super(`device group "${group}" already exists`, options);
  }
}

/**
 * An app or a cron job that live device groups name cannot be deleted (our choice: the original
 * removed it silently and left its containers on the group's hosts): 409, naming the groups, and
 * nothing changed.
 */
export class InDeviceGroupsError extends ApiError {
  override name = 'InDeviceGroupsError';
  readonly code = 'CONFLICT';
  readonly body: Record<string, unknown>;
  readonly groups: string[];
  constructor(kind: 'app' | 'cron job', name: string, groups: string[]) {
    super(`${kind} ${name} is in device groups ${groups.join(', ')}: remove it from them first`);
    this.groups = groups;
    this.body = { error: this.message, device_groups: groups };
  }
}

/** Restart (and roll) only make sense for a running app, as in the original. */
export class NotRunningError extends ApiError {
  override name = 'NotRunningError';
  readonly code = 'FORBIDDEN';
  readonly body = { running_before_restart: false };
  constructor(app: string) {
    super(`app "${app}" is stopped: start it instead`);
  }
}

export class RevisionNotFoundError extends ApiError {
  override name = 'RevisionNotFoundError';
  readonly code = 'FORBIDDEN';
  readonly body = { revision_exists: false };
  constructor(app: string, revision: number) {
    super(`app "${app}" has no revision ${revision}`);
  }
}

export class RolloutNotFoundError extends ApiError {
  override name = 'RolloutNotFoundError';
  readonly code = 'FORBIDDEN';
  readonly body = { rollout_exists: false };
  constructor(id: string) {
    super(`rollout "${id}" does not exist`);
  }
}

export class HostNotFoundError extends ApiError {
  override name = 'HostNotFoundError';
  readonly code = 'FORBIDDEN';
  readonly body = { host_exists: false };
  constructor(id: string) {
    super(`host "${id}" is not known (it never sent a heartbeat)`);
  }
}

/**
 * A rollout command (pause, resume, promote, abort, retry) its rollout's state does not allow: 409,
 * with the state it is in and the command, so a script can tell "already paused" from "finished".
 */
export class RolloutCommandRefusedError extends ApiError {
  override name = 'RolloutCommandRefusedError';
  readonly code = 'CONFLICT';
  readonly body: Record<string, unknown>;
  constructor(cause: RolloutConflictError) {
    super(cause.message, { cause });
    this.body = { error: cause.message, state: cause.state, command: cause.command };
  }
}

/** A query argument the data layer cannot use (e.g. a paging cursor that is not a rollout id). */
export class InvalidQueryError extends ApiError {
  override name = 'InvalidQueryError';
  readonly code = 'BAD_REQUEST';
  readonly body: Record<string, unknown>;
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(`${field}: ${message}`, options);
    this.body = { errors: { [field]: [message] } };
  }
}

/**
 * The change's message would be larger than NATS accepts (the server's max_payload): refused before
 * anything is written, since the relay could never publish it.
 */
export class MessageTooLargeError extends ApiError {
  override name = 'MessageTooLargeError';
  readonly code = 'BAD_REQUEST';
  readonly body: Record<string, unknown>;
  constructor(app: string, sizeBytes: number, limitBytes: number) {
    super(
      `the message of this change to "${app}" would be ${sizeBytes} bytes, over the NATS server's max_payload of ${limitBytes} bytes: make the config smaller (env_vars, labels...)`,
    );
    this.body = { error: 'message too large', message_bytes: sizeBytes, max_payload_bytes: limitBytes, errors: { '(body)': [this.message] } };
  }
}

/** A join token for a region the API's NATS_REGIONS does not name: 400, with the regions it knows. */
export class UnknownRegionError extends ApiError {
  override name = 'UnknownRegionError';
  readonly code = 'BAD_REQUEST';
  readonly body: Record<string, unknown>;
  constructor(region: string, known: readonly string[]) {
    super(
      known.length === 0
        ? `region "${region}" is not known: this API has no regions (NATS_REGIONS); leave region out for the hub`
        : `region "${region}" is not known: the API's regions (NATS_REGIONS) are ${known.join(', ')}; leave region out for the hub`,
    );
    this.body = { error: 'unknown region', region, regions: [...known], errors: { region: [this.message] } };
  }
}

/** A config that is wrong as a whole (e.g. after merging a PATCH into the current one). */
export class InvalidConfigError extends ApiError {
  override name = 'InvalidConfigError';
  readonly code = 'BAD_REQUEST';
  readonly body: Record<string, unknown>;
  readonly issues: z.core.$ZodIssue[];
  constructor(issues: z.core.$ZodIssue[], options?: ErrorOptions) {
    super('invalid app config', options);
    this.issues = issues;
    this.body = { errors: fieldErrors(issues) };
  }
}

/**
 * PostgreSQL did not answer in time (or the pool's queue of waiters is full): 503, worth retrying.
 * The body says which deadline passed, never the query.
 */
export class ServiceUnavailableError extends ApiError {
  override name = 'ServiceUnavailableError';
  readonly code = 'SERVICE_UNAVAILABLE';
  override readonly retryable = true;
  readonly body: Record<string, unknown>;
  constructor(cause: DatabaseUnavailableError) {
    super('the database is not answering: try again shortly', { cause });
    this.body = { error: 'service unavailable', reason: `database ${cause.reason}`, retryable: true };
  }
}

/**
 * A join or renewal refused (host-enrolment.ts): a token or signature that does not authenticate
 * (401), one that does but may not do this (403: expired, used up, apps outside the token's, a
 * revoked host), a stale request (400), an unknown host (404), a key of another host (409). The
 * message says why in words a person can act on; `error` is a stable name for scripts.
 */
export type EnrolmentRefusal =
  | 'malformed token'
  | 'unknown token'
  | 'wrong control plane'
  | 'token expired'
  | 'token used'
  | 'apps not allowed'
  | 'key revoked'
  | 'key of another host'
  | 'host revoked'
  | 'host unknown'
  | 'stale request'
  | 'bad signature';

const REFUSAL_CODE: Record<EnrolmentRefusal, ApiErrorCode> = {
  'malformed token': 'UNAUTHORIZED',
  'unknown token': 'UNAUTHORIZED',
  'wrong control plane': 'UNAUTHORIZED',
  'bad signature': 'UNAUTHORIZED',
  'token expired': 'FORBIDDEN',
  'token used': 'FORBIDDEN',
  'apps not allowed': 'FORBIDDEN',
  'key revoked': 'FORBIDDEN',
  'host revoked': 'FORBIDDEN',
  'key of another host': 'CONFLICT',
  'host unknown': 'NOT_FOUND',
  'stale request': 'BAD_REQUEST',
};

export class EnrolmentRefusedError extends ApiError {
  override name = 'EnrolmentRefusedError';
  readonly code: ApiErrorCode;
  readonly body: Record<string, unknown>;
  readonly refusal: EnrolmentRefusal;
  constructor(refusal: EnrolmentRefusal, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.refusal = refusal;
    this.code = REFUSAL_CODE[refusal];
    this.body = { error: refusal, ...extra };
  }
}

/** Too many failed joins or renewals from one address: 429 until the window has passed. */
export class TooManyAttemptsError extends ApiError {
  override name = 'TooManyAttemptsError';
  readonly code = 'TOO_MANY_REQUESTS';
  readonly body: Record<string, unknown>;
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super(`too many failed attempts from this address: try again in ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
    this.body = { error: 'too many attempts', retry_after_seconds: retryAfterSeconds };
  }
}

export class JoinTokenNotFoundError extends ApiError {
  override name = 'JoinTokenNotFoundError';
  readonly code = 'NOT_FOUND';
  readonly body = { join_token_exists: false };
  constructor(id: string) {
    super(`join token "${id}" does not exist`);
  }
}

export class HostNotJoinedError extends ApiError {
  override name = 'HostNotJoinedError';
  readonly code = 'NOT_FOUND';
  readonly body = { host_exists: false };
  constructor(id: string) {
    super(`host "${id}" never joined`);
  }
}

/**
 * NATS did not do what a join, renewal or revocation needs (consumers, the account's revocation
 * list): 503, worth retrying. What was recorded in PostgreSQL stays (a revocation), or was rolled
 * back (a join: its token use is not spent).
 */
export class BusUnavailableError extends ApiError {
  override name = 'BusUnavailableError';
  readonly code = 'SERVICE_UNAVAILABLE';
  override readonly retryable = true;
  readonly body: Record<string, unknown>;
  constructor(what: string, options?: ErrorOptions) {
    super(`NATS did not answer: ${what}; try again shortly`, options);
    this.body = { error: 'service unavailable', reason: `nats: ${what}`, retryable: true };
  }
}

/** Seconds a client should wait before retrying a 503. */
export const RETRY_AFTER_SECONDS = 2;

/**
 * The API error an error of the data layer stands for, or null for an unexpected one: the one
 * mapping from what `@nebula/db` throws to what clients get.
 */
export function apiErrorOf(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err instanceof QueryInputError) return new InvalidQueryError(err.field, err.message.replace(`${err.field}: `, ''), { cause: err });
  if (err instanceof DatabaseUnavailableError) return new ServiceUnavailableError(err);
  if (err instanceof RolloutConflictError) return new RolloutCommandRefusedError(err);
  return null;
}

/** The fields whose absence the original names in `{"missing_parameters": [...]}` (apps: the image; cron jobs: image and schedule). */
const NAMED_REQUIRED = ['docker_image', 'schedule'] as const;

/**
 * The original's extra keys for an input zod refused, which its SDK and scripts look for:
 * `missing_parameters` naming a required field the input lacks, `schedule_valid: false` for a cron
 * schedule given but not valid. Empty for any other refusal.
 */
export function compatZodBody(input: unknown, issues: readonly z.core.$ZodIssue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return out;
  const given = input as Record<string, unknown>;
  const missing = NAMED_REQUIRED.filter((f) => given[f] === undefined && issues.some((i) => i.path[0] === f));
  if (missing.length > 0) out.missing_parameters = missing;
  if (given.schedule !== undefined && issues.some((i) => i.path[0] === 'schedule')) out.schedule_valid = false;
  return out;
}

/** Field names come from the request: `__proto__` or `constructor` must be keys like any other. */
function emptyRecord(): Record<string, string[]> {
  return Object.create(null) as Record<string, string[]>;
}

/**
 * zod issues as `{ field: [messages] }`: one entry per wrong field (dotted path), and one per unknown
 * field, so a client sees every problem at once.
 */
export function fieldErrors(
  issues: readonly z.core.$ZodIssue[],
  prefix: PropertyKey[] = [],
  out: Record<string, string[]> = emptyRecord(),
): Record<string, string[]> {
  const add = (key: string, message: string) => {
    out[key] ??= [];
    out[key].push(message);
  };
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    const base = path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) add(base ? `${base}.${k}` : k, 'unknown field');
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Each branch's issues; report the branch that got furthest (not a bare type mismatch).
      const bare = ([only, ...more]: z.core.$ZodIssue[]) => only !== undefined && more.length === 0 && only.code === 'invalid_type' && only.path.length === 0;
      const [first] = issue.errors;
      const branch = issue.errors.find((b) => !bare(b)) ?? first;
      if (branch) fieldErrors(branch, path, out);
    } else if (issue.code === 'invalid_key' && issue.issues.length > 0) {
      fieldErrors(issue.issues, path, out);
    } else {
      add(base || '(body)', issue.message);
    }
  }
  return out;
}
