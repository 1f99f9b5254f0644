import Docker from 'dockerode';

/** A dockerode client for `unix:///path`, `tcp://host:port` or `http://host:port`. */
export function createDockerClient(dockerHost: string): Docker {
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  if (url.protocol === 'tcp:' || url.protocol === 'http:') return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
  throw new Error(`unsupported DOCKER_HOST ${dockerHost}`);
}

export async function pingDocker(docker: Docker): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}
