import type { AccessLevel, AppConfig } from '@nebula/contracts';
import type { Identity } from '../auth.ts';
import { AccessDeniedError, PrivilegedNotAllowedError } from './errors.ts';
import { allows, mayRunPrivileged, type PrivilegeFields, privilegedFields, type ResourceKind, redactEnv } from './permissions.ts';

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

/** A config that the caller may not run: privileged fields without privileged_allowed (or admin). Apps' and cron jobs' alike. */
export function requirePrivilegeFor(identity: Identity, name: string, config: PrivilegeFields, kind: ResourceKind = 'apps'): void {
  if (mayRunPrivileged(identity.permissions)) return;
  const fields = privilegedFields(config);
  if (fields.length > 0) throw new PrivilegedNotAllowedError(name, fields, WORD[kind]);
}

/** The config with env values only for a caller with "rw" on the app (or cron job). */
export function visibleConfig<T extends { env_vars: AppConfig['env_vars'] }>(identity: Identity, name: string, config: T, kind: ResourceKind = 'apps'): T {
  return allows(identity.permissions, kind, name, 'rw') ? config : redactEnv(config);
}
