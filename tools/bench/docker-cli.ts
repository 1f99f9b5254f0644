import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await exec('docker', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/** Host ports published by running containers matching a docker ps filter. */
export async function publishedUrls(filter: string): Promise<string[]> {
  const out = await docker('ps', '--filter', filter, '--filter', 'status=running', '--format', '{{.Ports}}');
  const urls = new Set<string>();
  for (const m of out.matchAll(/0\.0\.0\.0:(\d+)->/g)) urls.add(`http://127.0.0.1:${m[1]}/`);
  return [...urls];
}
