import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** A docker CLI call the engine does not answer in this long fails the part instead of hanging it. */
const DOCKER_DEADLINE_MS = 5 * 60_000;

export async function docker(...args: string[]): Promise<string> {
  try {
    const { stdout } = await exec('docker', args, { maxBuffer: 64 * 1024 * 1024, timeout: DOCKER_DEADLINE_MS });
    return stdout.trim();
  } catch (err) {
    if ((err as { killed?: boolean }).killed)
      throw new Error(`docker ${args.slice(0, 3).join(' ')}... did not answer within ${DOCKER_DEADLINE_MS / 1000} s: the engine is stuck`);
    throw err;
  }
}

/** Host ports published by running containers matching a docker ps filter. */
export async function publishedUrls(filter: string): Promise<string[]> {
  const out = await docker('ps', '--filter', filter, '--filter', 'status=running', '--format', '{{.Ports}}');
  const urls = new Set<string>();
  for (const m of out.matchAll(/0\.0\.0\.0:(\d+)->/g)) urls.add(`http://127.0.0.1:${m[1]}/`);
  return [...urls];
}
