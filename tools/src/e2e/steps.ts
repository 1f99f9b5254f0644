/**
 * Building blocks of the end-to-end cases: rollout progress through the public API, what a host's
 * engine did (its event log), and test images built and pushed to the registry.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { type Host, type RolloutProgress, rolloutProgressSchema } from '@nebula/contracts';
import { type TestHost, waitFor } from '@nebula/test-kit';
import type { Harness } from './harness.ts';

const exec = promisify(execFile);

export const ECHO = '127.0.0.1:5000/nebula/echo:1';

/** Rollout progress as `GET /api/v2/rollouts/<id>` answers it, checked against the shared schema. */
export async function progressOf(h: Harness, id: string): Promise<RolloutProgress> {
  const body = await h.rest.expect(200, 'GET', `/api/v2/rollouts/${id}`);
  return rolloutProgressSchema.parse(body);
}

/** Polls the progress of a rollout until `ok` says yes; returns the last progress read. */
export async function waitProgress(h: Harness, id: string, what: string, ok: (p: RolloutProgress) => boolean, timeoutMs = 30_000): Promise<RolloutProgress> {
  let last: RolloutProgress | null = null;
  try {
    return await waitFor(
      `rollout ${id}: ${what}`,
      async () => {
        last = await progressOf(h, id);
        return ok(last) ? last : undefined;
      },
      timeoutMs,
      150,
    );
  } catch (err) {
    throw new Error(`rollout ${id}: ${what}; last progress: ${JSON.stringify(last)}`, { cause: err });
  }
}

const stateOf = (p: RolloutProgress) => Object.fromEntries(p.hosts.map((x) => [x.host, x.state]));

/**
 * Waits until the rollout is complete with exactly `hosts` applied (and no failure), and returns
 * it. This is what the hosts must really run; callers compare it with their engines.
 */
export function waitApplied(h: Harness, id: string, hosts: string[], timeoutMs = 30_000): Promise<RolloutProgress> {
  const want = [...hosts].sort();
  return waitProgress(
    h,
    id,
    `complete, applied on ${want.join(', ')}`,
    (p) => {
      const applied = p.hosts
        .filter((x) => x.state === 'applied')
        .map((x) => x.host)
        .sort();
      return p.complete && p.failed === 0 && p.pending === 0 && JSON.stringify(applied) === JSON.stringify(want) && p.applied === want.length;
    },
    timeoutMs,
  );
}

export function hostStates(p: RolloutProgress): Record<string, string> {
  return stateOf(p);
}

export async function hostsView(h: Harness): Promise<Host[]> {
  return (await h.rest.expect<{ hosts: Host[] }>(200, 'GET', '/api/v2/hosts')).hosts;
}

/** The rollout id of an action's answer (body, or the header for DELETE). */
export function rolloutIdOf(body: unknown): string {
  const id = (body as { rollout_id?: unknown }).rollout_id;
  if (typeof id !== 'string') throw new Error(`no rollout_id in ${JSON.stringify(body)}`);
  return id;
}

/** Names of the containers of `app` that a host's engine created since `sinceMs` (its event log). */
export async function createdSince(host: TestHost, app: string, sinceMs: number): Promise<string[]> {
  const out = await host.docker(
    'events',
    '--since',
    (sinceMs / 1000).toFixed(3),
    '--until',
    (Date.now() / 1000).toFixed(3),
    '--filter',
    'type=container',
    '--filter',
    'event=create',
    '--filter',
    `label=io.nebula.app=${app}`,
    '--format',
    '{{.Actor.Attributes.name}}',
  );
  return out.split('\n').filter(Boolean);
}

/** Builds an image on the root engine from a Dockerfile given as text (no build context). */
export async function buildImage(tag: string, dockerfile: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn('docker', ['build', '-q', '-t', tag, '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker build ${tag}: ${err}`))));
    p.stdin.end(dockerfile);
  });
}

export async function rootDocker(...args: string[]): Promise<string> {
  return (await exec('docker', args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

/** Tags `source` as `tag` and pushes it to the registry. */
export async function pushAs(source: string, tag: string): Promise<void> {
  await rootDocker('tag', source, tag);
  await rootDocker('push', '-q', tag);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
