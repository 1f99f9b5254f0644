import { createNebulaClient, httpStatusOf, type NebulaClient } from '@nebula/client';
import { createContext, useContext } from 'react';

/**
 * The signed-in user: the typed client made with the credentials typed into the login form, and
 * what `session.me` says the user may do. The credentials live in this object only (memory): never
 * in storage, a cookie or a URL, so a reload asks for them again and nothing outlives the tab.
 */
export type Me = Awaited<ReturnType<NebulaClient['session']['me']['query']>>;

export interface Session {
  client: NebulaClient;
  me: Me;
}

/** Signs in: the auth stage checks the pair on `session.me`. Throws LoginError on refusal. */
export async function signIn(username: string, password: string): Promise<Session> {
  const client = createNebulaClient({ url: location.origin, username, password });
  try {
    const me = await client.session.me.query(undefined, { signal: AbortSignal.timeout(10_000) });
    return { client, me };
  } catch (err) {
    const status = httpStatusOf(err);
    if (status === 401) throw new LoginError('Wrong username or password.');
    if (status === 429) throw new LoginError('Too many failed sign-ins: wait a minute and try again.');
    throw new LoginError(`The API did not answer (${err instanceof Error ? err.message : String(err)}).`);
  }
}

export class LoginError extends Error {
  override name = 'LoginError';
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (s === null) throw new Error('useSession outside a signed-in page');
  return s;
}

/** Whether the user may change the app (courtesy only: the API checks again). */
export function mayWrite(me: Me, app: string): boolean {
  return me.permissions.admin || me.permissions.apps[app] === 'rw';
}

/** Whether the user may change the device group (its lists, delete; courtesy only: the API checks again). */
export function mayWriteGroup(me: Me, group: string): boolean {
  return me.permissions.admin || me.permissions.device_groups[group] === 'rw';
}

/** Whether the user may prune images (pruning_allowed, or admin). */
export function mayPrune(me: Me): boolean {
  return me.permissions.admin || me.permissions.pruning_allowed;
}

/** Whether the user may create or change the cron job (`rw` on it, or admin). */
export function mayWriteCronJob(me: Me, job: string): boolean {
  return me.permissions.admin || me.permissions.cron_jobs[job] === 'rw';
}

/** Whether the user may create a device group or cron job of a name not known yet: only an admin holds rights on every name. */
export function mayCreate(me: Me, kind: 'device_groups' | 'cron_jobs'): boolean {
  return me.permissions.admin || Object.values(me.permissions[kind]).includes('rw');
}
