/**
 * PostgreSQL and NATS for an end-to-end run, as containers of the local images started through
 * testcontainers, so a test can stop, pause and restart them like an operator (or an outage) would.
 *
 * Each is published on a fixed free port of 127.0.0.1 chosen at start: Docker gives a container a new
 * random port when it restarts, and the services under test must find it again at the same address.
 * Every container carries `io.nebula.test=true` (removed by `npm test` after a crash) and the run's
 * `io.nebula.e2e=<run id>`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { promisify } from 'node:util';
import type { BusDirectory } from '@nebula/bus-auth';
import { freePort, waitFor } from '@nebula/test-kit';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { processAlive } from './processes.ts';

const exec = promisify(execFile);

export const E2E_LABEL = 'io.nebula.e2e';

export interface InfraContainer {
  /** 127.0.0.1 port the service answers on. */
  port: number;
  id: string;
  /** Stops and starts the same container (its data kept): `graceSeconds` before SIGKILL. */
  restart(graceSeconds?: number): Promise<void>;
  /** Freezes every process of the container (`docker pause`): connections hang, nothing is refused. */
  pause(): Promise<void>;
  unpause(): Promise<void>;
  remove(): Promise<void>;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function logCount(id: string, marker: string): Promise<number> {
  const { stdout, stderr } = await exec('docker', ['logs', id], { maxBuffer: 64 * 1024 * 1024 });
  return (stdout + stderr).split(marker).length - 1;
}

/** `marker`: the log line the service prints when it is ready (again, after a restart). */
function wrap(container: StartedTestContainer, port: number, marker: string): InfraContainer {
  const id = container.getId();
  const docker = (...args: string[]) => exec('docker', args);
  return {
    port,
    id,
    async restart(graceSeconds = 1) {
      const before = await logCount(id, marker);
      await docker('restart', '-t', String(graceSeconds), id);
      await waitFor(`${container.getName()} to be ready again`, async () => (await logCount(id, marker)) > before && (await tcpOpen(port)), 60_000, 100);
    },
    async pause() {
      await docker('pause', id);
    },
    async unpause() {
      await docker('unpause', id);
    },
    async remove() {
      await docker('rm', '-f', '-v', id).catch(() => undefined);
    },
  };
}

const PG_READY = 'database system is ready to accept connections';
const NATS_READY = 'Server is ready';

/** A port picked free a moment ago may be taken by the time Docker binds it: pick another. */
async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (err) {
      if (attempt >= 3 || !/address already in use|port is already allocated/i.test(String(err))) throw err;
    }
  }
}

export function startPostgres(runId: string): Promise<InfraContainer & { url: string }> {
  return onFreePort((port) => startPostgresOn(runId, port));
}

/** A secured NATS (operator mode): `busDir` holds its keys and the services' credentials (ensureBusDirectory). */
export function startNats(runId: string, bus: BusDirectory): Promise<InfraContainer & { url: string }> {
  return onFreePort((port) => startNatsOn(runId, port, bus));
}

async function startPostgresOn(runId: string, port: number): Promise<InfraContainer & { url: string }> {
  const password = `pw-${runId}`;
  const container = await new GenericContainer('nebula/postgres:15')
    .withEnvironment({ POSTGRES_PASSWORD: password, POSTGRES_DB: 'nebula' })
    .withExposedPorts({ container: 5432, host: port })
    .withLabels({ 'io.nebula.test': 'true', [E2E_LABEL]: runId })
    .withName(`nebula-e2e-${runId}-postgres-${port}`)
    .withWaitStrategy(Wait.forLogMessage(PG_READY))
    .withStartupTimeout(60_000)
    .start();
  return { ...wrap(container, port, PG_READY), url: `postgres://postgres:${password}@127.0.0.1:${port}/nebula` };
}

async function startNatsOn(runId: string, port: number, bus: BusDirectory): Promise<InfraContainer & { url: string }> {
  const container = await new GenericContainer('nebula/nats:2.10')
    .withCopyContentToContainer([{ content: readFileSync(bus.natsConf, 'utf8'), target: '/etc/nats/nats.conf' }])
    .withCommand(['-c', '/etc/nats/nats.conf', '-js', '-sd', '/data', '-m', '8222'])
    .withExposedPorts({ container: 4222, host: port })
    .withLabels({ 'io.nebula.test': 'true', [E2E_LABEL]: runId })
    .withName(`nebula-e2e-${runId}-nats-${port}`)
    .withWaitStrategy(Wait.forLogMessage(NATS_READY))
    .withStartupTimeout(30_000)
    .start();
  return { ...wrap(container, port, NATS_READY), url: `nats://127.0.0.1:${port}` };
}

/** Every container of a run (also one left by a start that failed). */
export async function removeRunInfra(runId: string): Promise<void> {
  const { stdout } = await exec('docker', ['ps', '-aq', '--filter', `label=${E2E_LABEL}=${runId}`]);
  const ids = stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await exec('docker', ['rm', '-f', '-v', ...ids]).catch(() => undefined);
}

/** Containers of earlier runs whose process is gone (a crash or a kill -9 of the test). */
export async function removeStaleInfra(): Promise<void> {
  const { stdout } = await exec('docker', ['ps', '-a', '--filter', `label=${E2E_LABEL}`, '--format', `{{.ID}} {{.Label "${E2E_LABEL}"}}`]);
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [id, run] = line.split(' ');
    const pid = Number(/p(\d+)$/.exec(run ?? '')?.[1]);
    if (!id || !Number.isInteger(pid) || processAlive(pid)) continue; // malformed, or its run is still going
    await exec('docker', ['rm', '-f', '-v', id]).catch(() => undefined);
  }
}

/**
 * Removes the test images of a run (`127.0.0.1:5000/nebula/e2e-<run id>...`) from the root engine:
 * their tags and the digest references pushing left. Without a run id: those of runs whose process is
 * gone. Only references are removed (no -f), so an image something else uses stays. The registry keeps
 * its blobs (it cannot delete).
 */
export async function removeRunImages(runId?: string): Promise<void> {
  const { stdout } = await exec('docker', ['image', 'ls', '--digests', '--format', '{{.Repository}}\t{{.Tag}}\t{{.Digest}}']);
  const refs: string[] = [];
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [repo = '', tag = '', digest = ''] = line.split('\t');
    const m = /^127\.0\.0\.1:5000\/nebula\/e2e-([a-z0-9]+p(\d+))(?:-[a-z0-9-]+)?$/.exec(repo);
    if (!m) continue;
    if (runId !== undefined ? m[1] !== runId : processAlive(Number(m[2]))) continue;
    if (tag !== '<none>') refs.push(`${repo}:${tag}`);
    if (digest !== '<none>') refs.push(`${repo}@${digest}`);
  }
  for (const ref of refs) await exec('docker', ['rmi', ref]).catch(() => undefined);
}
