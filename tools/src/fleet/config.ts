/**
 * The settings of the local fleet, from the environment `npm start` was given, pure: a wrong one is
 * an error naming its variable.
 */
import { join } from 'node:path';
import { appNameSchema, deviceGroupNameSchema } from '@nebula/contracts';

/** More would mostly measure the machine: each host is an engine (~60 MB) and a worker (~80 MB). */
export const MAX_FLEET_HOSTS = 64;
/** Loaded into every host when present on the machine's engine (FLEET_IMAGES changes the list). */
export const DEFAULT_FLEET_IMAGES = ['nebula/echo:1'];

export class FleetConfigError extends Error {
  readonly variable: string;
  constructor(message: string, variable: string) {
    super(message);
    this.variable = variable;
  }
}

export type ApiAuth = { kind: 'basic'; user: string; password: string } | { kind: 'bearer'; token: string };

export interface FleetConfig {
  hosts: number;
  /** APP_NAME: what every host serves. */
  apps: string[];
  /** DEVICE_GROUP: the device group every host follows (its apps served too); null: none. */
  deviceGroup: string | null;
  images: string[];
  /** Where the state file, the hosts' credentials and the workers' logs go. */
  dir: string;
  apiUrl: string;
  auth: ApiAuth | null;
}

function list(s: string | undefined): string[] {
  return (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

export function parseFleetHosts(raw: string | undefined): number {
  const s = (raw ?? '').trim();
  if (s === '') return 0;
  if (!/^\d+$/.test(s) || Number(s) > MAX_FLEET_HOSTS) {
    throw new FleetConfigError(`FLEET_HOSTS must be a whole number from 0 to ${MAX_FLEET_HOSTS} (got "${raw}")`, 'FLEET_HOSTS');
  }
  return Number(s);
}

/** Empty or unset: none. */
export function parseDeviceGroup(raw: string | undefined): string | null {
  const g = raw?.trim() ?? '';
  if (g === '') return null;
  const r = deviceGroupNameSchema.safeParse(g);
  if (!r.success) throw new FleetConfigError(`DEVICE_GROUP: "${g}" is not a device group name (${r.error.issues[0]?.message ?? 'invalid'})`, 'DEVICE_GROUP');
  return g;
}

export function parseApps(raw: string | undefined): string[] {
  const apps = list(raw);
  for (const a of apps) {
    const r = appNameSchema.safeParse(a);
    if (!r.success) throw new FleetConfigError(`APP_NAME: "${a}" is not an app name (${r.error.issues[0]?.message ?? 'invalid'})`, 'APP_NAME');
  }
  if (new Set(apps).size !== apps.length) throw new FleetConfigError('APP_NAME: an app is listed twice', 'APP_NAME');
  return apps;
}

export function fleetDir(env: NodeJS.ProcessEnv, root: string): string {
  return env.NEBULA_FLEET_DIR ?? join(root, '.stack', 'fleet');
}

export function fleetConfig(env: NodeJS.ProcessEnv, root: string): FleetConfig {
  const auth: ApiAuth | null =
    env.BASIC_AUTH_USER && env.BASIC_AUTH_PASSWORD
      ? { kind: 'basic', user: env.BASIC_AUTH_USER, password: env.BASIC_AUTH_PASSWORD }
      : env.AUTH_TOKEN
        ? { kind: 'bearer', token: env.AUTH_TOKEN }
        : null;
  const apiUrl = env.NEBULA_URL ?? `http://127.0.0.1:${env.API_PORT ?? '8080'}`;
  try {
    new URL(apiUrl);
  } catch {
    throw new FleetConfigError(`NEBULA_URL: "${apiUrl}" is not a URL`, 'NEBULA_URL');
  }
  return {
    hosts: parseFleetHosts(env.FLEET_HOSTS),
    apps: parseApps(env.APP_NAME),
    deviceGroup: parseDeviceGroup(env.DEVICE_GROUP),
    images: env.FLEET_IMAGES === undefined ? DEFAULT_FLEET_IMAGES : list(env.FLEET_IMAGES),
    dir: fleetDir(env, root),
    apiUrl: apiUrl.replace(/\/+$/, ''),
    auth,
  };
}

/** Host `n`'s id: the same at every start, so a restarted fleet is the same hosts joining again, not new ones. */
export function fleetHostId(n: number): string {
  return `fleet-${n}`;
}

/**
 * A worker's environment: the one `npm start` was given (its settings, e.g. LOG_LEVEL or a host
 * policy, apply to every host), without the API's credentials, with the host's own over it.
 */
export function workerEnv(base: NodeJS.ProcessEnv, host: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined) continue;
    if (k === 'BASIC_AUTH_USER' || k === 'BASIC_AUTH_PASSWORD' || k === 'AUTH_TOKEN' || k === 'HOST_ID' || k === 'MACHINE_ID_FILE') continue;
    if (k.startsWith('NEBULA_JOIN_') || k === 'NEBULA_CREDENTIALS_FILE' || k === 'METRICS_PORT' || k === 'DOCKER_HOST') continue;
    env[k] = v;
  }
  return { ...env, ...host };
}
