import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { waitFor } from '@nebula/test-kit';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { createDockerClient } from '../src/runtime/docker-client.ts';

export const docker = createDockerClient(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock');
export const ECHO = 'nebula/echo:1';
export const REGISTRY = '127.0.0.1:5000';
const run = promisify(execFile);

export async function dockerCli(...args: string[]): Promise<string> {
  return (await run('docker', args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
  });
}

/** `n` consecutive free ports (the original gives container i host port base+i). */
export async function freePortRange(n: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
}

export interface EchoAnswer {
  port: number;
  version: string;
  hostname: string;
  env: Record<string, string>;
}

/** GET / of the echo image, from outside through the published port. */
export async function echo(port: number): Promise<EchoAnswer | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
    return (await r.json()) as EchoAnswer;
  } catch {
    return null;
  }
}

/** Waits until the port answers with something `check` accepts. */
export function answers(port: number, check: (a: EchoAnswer) => boolean = () => true, timeoutMs = 20_000): Promise<EchoAnswer> {
  return waitFor(
    `port ${port} to answer`,
    async () => {
      const a = await echo(port);
      return a !== null && check(a) ? a : undefined;
    },
    timeoutMs,
    100,
  );
}

/** Our containers of a host, by name. */
export async function containersOf(hostId: string) {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.host}=${hostId}`] } });
  return new Map(list.map((c) => [(c.Names[0] ?? '').replace(/^\//, ''), c]));
}

export async function removeHostContainers(hostId: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.owner}=nebula`, `${LABELS.host}=${hostId}`] } });
  await Promise.all(
    list.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
}
