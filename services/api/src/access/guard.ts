import type { AccessLevel, AppConfig } from '@nebula/contracts';
import type { Identity } from '../auth.ts';
import { AccessDeniedError, PrivilegedNotAllowedError } from './errors.ts';
import { allows, mayRunPrivileged, privilegedFields, type ResourceKind, redactEnv } from './permissions.ts';

/**
 * The checks procedures make, each throwing the original's 403 `{"access_allowed": false}`. A caller
 * without access to an app is refused before the app is looked up, so the answer does not say
 * whether it exists.
 */
export function requireAdmin(identity: Identity): void {
  if (!identity.permissions.admin) throw new AccessDeniedError(`"${identity.name}" is not an admin`);
}

const WORD: Record<ResourceKind, string> = { apps: 'app', device_groups: 'device group', cron_jobs: 'cron job' };

export function requireAccess(identity: Identity, kind: ResourceKind, name: string, level: AccessLevel): void {
  if (!allows(identity.permissions, kind, name, level)) {
    throw new AccessDeniedError(`"${identity.name}" has no ${level === 'rw' ? 'write' : 'read'} access to ${WORD[kind]} "${name}"`);
  }
}

/** A config that the caller may not run: privileged fields without privileged_allowed (or admin). */
export function requirePrivilegeFor(identity: Identity, app: string, config: AppConfig): void {
  if (mayRunPrivileged(identity.permissions)) return;
  const fields = privilegedFields(config);
  if (fields.length > 0) throw new PrivilegedNotAllowedError(app, fields);
}

/** The config with env values only for a caller with "rw" on the app. */
export function visibleConfig<T extends { env_vars: AppConfig['env_vars'] }>(identity: Identity, app: string, config: T): T {
  return allows(identity.permissions, 'apps', app, 'rw') ? config : redactEnv(config);
}
