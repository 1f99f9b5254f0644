import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface RegistryCredentials {
  username: string;
  password: string;
  serveraddress: string;
}

/** Docker Hub goes by several names; the Docker config file uses the v1 index URL. */
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com', 'https://index.docker.io/v1/']);

function normaliseRegistry(host: string): string {
  const bare = host
    .replace(/^https?:\/\//, '')
    .replace(/\/v[12]\/?$/, '')
    .replace(/\/$/, '');
  return DOCKER_HUB.has(host) || DOCKER_HUB.has(bare) ? 'docker.io' : bare;
}

/**
 * Credentials for a registry: REGISTRY_AUTH_USER/PASSWORD for REGISTRY_HOST (Docker Hub when
 * unset), as the original logged in once at boot; otherwise the `auths` of the Docker config file
 * (`~/.docker/config.json`), which is how several registries are served. Credential helpers are
 * not supported.
 */
export function registryAuthResolver(opts: { user?: string | undefined; password?: string | undefined; host?: string | undefined; dockerConfigPath?: string }) {
  const fromEnv =
    opts.user !== undefined && opts.password !== undefined
      ? {
          registry: normaliseRegistry(opts.host ?? 'docker.io'),
          username: opts.user,
          password: opts.password,
          serveraddress: opts.host ?? 'https://index.docker.io/v1/',
        }
      : null;
  const fromFile = new Map<string, RegistryCredentials>();
  try {
    const path = opts.dockerConfigPath ?? join(homedir(), '.docker', 'config.json');
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { auths?: Record<string, { auth?: string }> };
    for (const [server, entry] of Object.entries(parsed.auths ?? {})) {
      if (typeof entry.auth !== 'string') continue;
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) continue;
      fromFile.set(normaliseRegistry(server), { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: server });
    }
  } catch {
    // No config file (or an unreadable one): pull anonymously.
  }
  return (registry: string): RegistryCredentials | undefined => {
    const key = normaliseRegistry(registry);
    if (fromEnv !== null && fromEnv.registry === key) return { username: fromEnv.username, password: fromEnv.password, serveraddress: fromEnv.serveraddress };
    return fromFile.get(key);
  };
}
