/**
 * The worker image on a simulated host, started with the `docker run` a join token prints
 * (`docker_command`), changed only where a simulated host differs from a real one: its engine's
 * socket is not at /var/run/docker.sock of the machine, its machine id is a file of the run's, and
 * the run's NATS has a private CA, which a host is given as NATS_TLS_CA, and a name that no DNS
 * serves, which a host is given as an entry of its /etc/hosts.
 */

/** What a join command names (the API's `joinCommands`), for images whose API prints no `docker_command`. */
export interface JoinCommandParts {
  apiUrl: string;
  natsUrl: string;
  token: string;
  apps: readonly string[];
  image: string;
}

/** The form deploy/docker/worker.Dockerfile documents and the API prints (`docker_command`). */
export function documentedDockerCommand(p: JoinCommandParts): string {
  return [
    'docker run -d --restart unless-stopped --name nebula-worker',
    '-v /var/run/docker.sock:/var/run/docker.sock -v /etc/machine-id:/etc/machine-id:ro -v nebula-worker:/var/lib/nebula',
    `-e NEBULA_URL=${p.apiUrl} -e NATS_URL=${p.natsUrl} -e NEBULA_JOIN_TOKEN=${p.token} -e APP_NAME=${p.apps.join(',')}`,
    p.image,
  ].join(' ');
}

export interface SimulatedHostMounts {
  /** The host engine's socket (a path on the machine). */
  dockerSocket: string;
  /** A file holding this host's machine id. */
  machineIdFile: string;
  /** The CA of the NATS servers' certificate, mounted and named by NATS_TLS_CA. */
  natsCaFile: string;
  /** Names the host resolves (`--add-host`), as a real host's DNS would: NATS's name. */
  hosts?: Record<string, string>;
  /** More settings (`-e`), such as short timeouts for a test. */
  env?: Record<string, string>;
}

const SOCKET = '/var/run/docker.sock';
const MACHINE_ID = '/etc/machine-id';
const CA_IN_CONTAINER = '/etc/nebula/nats-ca.pem';

/**
 * The arguments after `docker` for one simulated host. Throws when the printed command is not a
 * `docker run` of the image mounting the socket, the machine id (read-only) and a volume for
 * /var/lib/nebula: what a real host needs.
 */
export function workerRunArgs(dockerCommand: string, host: SimulatedHostMounts): string[] {
  const words = dockerCommand.trim().split(/\s+/);
  if (words[0] !== 'docker' || words[1] !== 'run') throw new Error(`not a docker run: ${dockerCommand}`);
  const image = words.at(-1) ?? '';
  const args = words.slice(1, -1);
  const seen = { socket: false, machineId: false, state: false };
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== '-v') continue;
    const [source, target, mode] = (args[i + 1] ?? '').split(':');
    if (target === SOCKET && source === SOCKET) {
      args[i + 1] = `${host.dockerSocket}:${SOCKET}`;
      seen.socket = true;
    } else if (target === MACHINE_ID && source === MACHINE_ID && mode === 'ro') {
      args[i + 1] = `${host.machineIdFile}:${MACHINE_ID}:ro`;
      seen.machineId = true;
    } else if (target === '/var/lib/nebula' && source && !source.startsWith('/')) {
      seen.state = true;
    }
  }
  const missing = Object.entries(seen)
    .filter(([, ok]) => !ok)
    .map(([k]) => k);
  if (missing.length > 0) throw new Error(`the printed docker run lacks the mounts ${missing.join(', ')}: ${dockerCommand}`);
  const extra = ['-v', `${host.natsCaFile}:${CA_IN_CONTAINER}:ro`, '-e', `NATS_TLS_CA=${CA_IN_CONTAINER}`];
  for (const [name, address] of Object.entries(host.hosts ?? {})) extra.push('--add-host', `${name}:${address}`);
  for (const [k, v] of Object.entries(host.env ?? {})) extra.push('-e', `${k}=${v}`);
  return [...args, ...extra, image];
}

/** The value of `-e NAME=...` in a printed command (null when it sets none). */
export function envOf(dockerCommand: string, name: string): string | null {
  const words = dockerCommand.trim().split(/\s+/);
  for (let i = 0; i < words.length - 1; i++) {
    const w = words[i + 1] ?? '';
    if (words[i] === '-e' && w.startsWith(`${name}=`)) return w.slice(name.length + 1);
  }
  return null;
}
