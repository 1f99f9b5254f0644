import { ApiError } from '../errors.ts';

/**
 * Refusals of users, groups and permissions, in the original's bodies: a denied call is 403
 * `{"access_allowed": false}`; a missing user or group 403 `{"user_exists": false}`...
 */
export class AccessDeniedError extends ApiError {
  override name = 'AccessDeniedError';
  readonly code = 'FORBIDDEN';
  readonly body: Record<string, unknown>;
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.body = { access_allowed: false, ...extra };
  }
}

/** A privileged config from a caller whose groups lack privileged_allowed: 403 naming the fields. */
export class PrivilegedNotAllowedError extends AccessDeniedError {
  override name = 'PrivilegedNotAllowedError';
  constructor(name: string, fields: string[], kind = 'app') {
    super(
      `${kind} "${name}": ${fields.join(', ')} ${fields.length === 1 ? 'makes' : 'make'} the config privileged (host devices, the host network, bind mounts or privileged mode): that needs a group with privileged_allowed, or admin`,
      { privileged_fields: fields },
    );
  }
}

export class UserNotFoundError extends ApiError {
  override name = 'UserNotFoundError';
  readonly code = 'FORBIDDEN';
  readonly body: Record<string, unknown>;
  /** `as`: the original's body differs by route: `{"user_exists": false}` (get, delete), `{"user_name": false}` (update, refresh). */
  constructor(user: string, as: 'user_exists' | 'user_name' = 'user_exists') {
    super(`user "${user}" does not exist`);
    this.body = { [as]: false };
  }
}

export class UserExistsError extends ApiError {
  override name = 'UserExistsError';
  readonly code = 'FORBIDDEN';
  readonly body = { user_exists: true };
  constructor(user: string) {
    super(`user "${user}" already exists`);
  }
}

/** An admin-given token that another user has already (tokens identify users, so they are unique). */
export class TokenInUseError extends ApiError {
  override name = 'TokenInUseError';
  readonly code = 'BAD_REQUEST';
  readonly body = { errors: { token: ['already used: choose another, or leave it out for a random one'] } };
  constructor() {
    super('token already used');
  }
}

export class UserGroupNotFoundError extends ApiError {
  override name = 'UserGroupNotFoundError';
  readonly code = 'FORBIDDEN';
  readonly body = { user_group_exists: false };
  constructor(group: string) {
    super(`user group "${group}" does not exist`);
  }
}

export class UserGroupExistsError extends ApiError {
  override name = 'UserGroupExistsError';
  readonly code = 'FORBIDDEN';
  readonly body = { user_group_exists: true };
  constructor(group: string) {
    super(`user group "${group}" already exists`);
  }
}
