import Docker from 'dockerode';

/** A dockerode client for `unix:///path`, `tcp://host:port` or `http://host:port`. */
export function createDockerClient(dockerHost: string): Docker {
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  if (url.protocol === 'tcp:' || url.protocol === 'http:') return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
  throw new Error(`unsupported DOCKER_HOST ${dockerHost}`);
}

/**
 * No client-wide `timeout`: docker-modem's is an idle-socket timeout, which a `stop` waiting out its
 * grace period or a quiet pull would trip. Each call gets its own deadline instead (DockerRuntime).
 */
export async function pingDocker(docker: Docker, timeoutMs = 5_000): Promise<boolean> {
  try {
    await (docker as unknown as { ping(o: { abortSignal: AbortSignal }): Promise<unknown> }).ping({ abortSignal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch {
    return false;
  }
}
