/**
 * Looks at the hosts from outside, as an operator would: each host's own Docker engine (`docker ps`
 * against its socket) and HTTP requests to the published ports on the host's address. Nothing here
 * asks the system under test what it thinks it did.
 */
import type { TestHost } from '@nebula/test-kit';
import { waitFor } from '@nebula/test-kit';

/** What the echo image answers on GET /. */
export interface EchoAnswer {
  port: number;
  version: string;
  hostname: string;
  env: Record<string, string>;
}

export interface ObservedContainer {
  name: string;
  id: string;
  state: string;
  revision: number;
  incarnation: number;
  image: string;
}

/** The containers of `app` on a host (any state), by name. */
export async function containersOn(host: TestHost, app: string): Promise<ObservedContainer[]> {
  const format = '{{.Names}}\t{{.ID}}\t{{.State}}\t{{.Label "io.nebula.revision"}}\t{{.Label "io.nebula.incarnation"}}\t{{.Image}}';
  const out = await host.docker('ps', '-a', '--no-trunc', '--filter', `label=io.nebula.app=${app}`, '--format', format);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [name = '', id = '', state = '', revision = '', incarnation = '', image = ''] = l.split('\t');
      return { name, id, state, revision: Number(revision), incarnation: Number(incarnation), image };
    })
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** GET / of an echo container through a published port; null when nothing answers. */
export async function echoAt(host: TestHost, port: number, timeoutMs = 2000): Promise<EchoAnswer | null> {
  try {
    const r = await fetch(`http://${host.address}:${port}/`, { signal: AbortSignal.timeout(timeoutMs) });
    if (r.status !== 200) return null;
    return (await r.json()) as EchoAnswer;
  } catch {
    return null;
  }
}

/** What one host should run of an app. */
export interface HostExpectation {
  /** Number of containers, all running, named `<app>-1..n`. 0: none at all. */
  count: number;
  revision?: number;
  incarnation?: number;
  /** The image reference the containers were created from. */
  image?: string;
  /** Host ports (`starting_ports` as host ports): container i answers on port + i. */
  ports?: number[];
  /** Every answer carries these variables. */
  env?: Record<string, string>;
  /** Every answer carries this /version of the image. */
  version?: string;
  /** Ports that must not answer (ports the app no longer uses). */
  closedPorts?: number[];
}

export type FleetExpectation = Record<string, HostExpectation>;

/** Same expectation for these hosts; `none` for the others. */
export function onHosts(hosts: TestHost[], names: string[], e: HostExpectation): FleetExpectation {
  return Object.fromEntries(hosts.map((h) => [h.name, names.includes(h.name) ? e : { count: 0 }]));
}

/** Why a host does not match yet, or null when it does. */
export async function mismatch(host: TestHost, app: string, e: HostExpectation): Promise<string | null> {
  const cs = await containersOn(host, app);
  const where = `${host.name}/${app}`;
  if (cs.length !== e.count) return `${where}: ${cs.length} containers (${cs.map((c) => `${c.name}:${c.state}:r${c.revision}`).join(', ')}), want ${e.count}`;
  for (const [i, c] of cs.entries()) {
    if (c.name !== `${app}-${i + 1}`) return `${where}: container ${c.name}, want ${app}-${i + 1}`;
    if (c.state !== 'running') return `${where}: ${c.name} is ${c.state}`;
    if (e.revision !== undefined && c.revision !== e.revision) return `${where}: ${c.name} runs revision ${c.revision}, want ${e.revision}`;
    if (e.incarnation !== undefined && c.incarnation !== e.incarnation) return `${where}: ${c.name} is incarnation ${c.incarnation}, want ${e.incarnation}`;
    if (e.image !== undefined && c.image !== e.image) return `${where}: ${c.name} runs ${c.image}, want ${e.image}`;
  }
  const probes: Array<Promise<string | null>> = [];
  for (const base of e.ports ?? []) {
    for (let i = 0; i < e.count; i++) {
      probes.push(
        echoAt(host, base + i).then((a) => {
          if (a === null) return `${where}: port ${base + i} does not answer`;
          for (const [k, v] of Object.entries(e.env ?? {})) if (a.env[k] !== v) return `${where}: port ${base + i} has ${k}=${a.env[k]}, want ${v}`;
          if (e.version !== undefined && a.version !== e.version) return `${where}: port ${base + i} serves version ${a.version}, want ${e.version}`;
          return null;
        }),
      );
    }
  }
  for (const port of e.closedPorts ?? []) {
    probes.push(echoAt(host, port, 1000).then((a) => (a === null ? null : `${where}: port ${port} still answers`)));
  }
  return (await Promise.all(probes)).find((x) => x !== null) ?? null;
}

/**
 * Polls every host until each matches its expectation; returns the milliseconds since `since`
 * (when the change was made). Throws with the last mismatch when `timeoutMs` runs out.
 */
export async function waitConverged(
  hosts: TestHost[],
  app: string,
  expect: FleetExpectation,
  opts: { since?: number; timeoutMs?: number } = {},
): Promise<number> {
  const since = opts.since ?? Date.now();
  let last = '';
  try {
    await waitFor(
      `${app} converged on every host`,
      async () => {
        const reasons = await Promise.all(hosts.map((h) => mismatch(h, app, expect[h.name] ?? { count: 0 })));
        last = reasons.filter((r) => r !== null).join('; ');
        return last === '';
      },
      opts.timeoutMs ?? 60_000,
      200,
    );
  } catch (err) {
    throw new Error(`${app} did not converge: ${last}`, { cause: err });
  }
  return Date.now() - since;
}

/**
 * Polls the published ports of an app on every host while `during` runs and records, per host,
 * the most ports that were down at the same moment. For rolling restarts: at most one.
 */
export async function watchAvailability<T>(
  hosts: TestHost[],
  ports: number[],
  during: () => Promise<T>,
  everyMs = 40,
): Promise<{ result: T; maxDown: Record<string, number>; samples: number; versions: Record<string, Set<string>> }> {
  const maxDown: Record<string, number> = Object.fromEntries(hosts.map((h) => [h.name, 0]));
  const versions: Record<string, Set<string>> = Object.fromEntries(hosts.map((h) => [h.name, new Set<string>()]));
  let samples = 0;
  let done = false;
  const poll = (async () => {
    while (!done) {
      const started = Date.now();
      await Promise.all(
        hosts.map(async (h) => {
          const answers = await Promise.all(ports.map((p) => echoAt(h, p, 2000)));
          const down = answers.filter((a) => a === null).length;
          const seen = versions[h.name];
          if (!seen) throw new Error(`watchAvailability: no versions kept for host ${h.name}`);
          for (const a of answers) if (a) seen.add(`${a.version}/${JSON.stringify(a.env.V ?? '')}`);
          maxDown[h.name] = Math.max(maxDown[h.name] ?? 0, down);
        }),
      );
      samples += 1;
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - started))));
    }
  })();
  try {
    const result = await during();
    return { result, maxDown, samples, versions };
  } finally {
    done = true;
    await poll;
  }
}
