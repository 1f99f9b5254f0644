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
import { createConnection } from 'node:net';
import { promisify } from 'node:util';
import { freePort, waitFor } from '@nebula/test-kit';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';

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

export async function startPostgres(runId: string): Promise<InfraContainer & { url: string }> {
  const port = await freePort();
  const password = `pw-${runId}`;
  const container = await new GenericContainer('nebula/postgres:15')
    .withEnvironment({ POSTGRES_PASSWORD: password, POSTGRES_DB: 'nebula' })
    .withExposedPorts({ container: 5432, host: port })
    .withLabels({ 'io.nebula.test': 'true', [E2E_LABEL]: runId })
    .withName(`nebula-e2e-${runId}-postgres`)
    .withWaitStrategy(Wait.forLogMessage(PG_READY))
    .withStartupTimeout(60_000)
    .start();
  return { ...wrap(container, port, PG_READY), url: `postgres://postgres:${password}@127.0.0.1:${port}/nebula` };
}

export async function startNats(runId: string): Promise<InfraContainer & { url: string }> {
  const port = await freePort();
  const container = await new GenericContainer('nebula/nats:2.9')
    .withExposedPorts({ container: 4222, host: port })
    .withLabels({ 'io.nebula.test': 'true', [E2E_LABEL]: runId })
    .withName(`nebula-e2e-${runId}-nats`)
    .withWaitStrategy(Wait.forLogMessage(NATS_READY))
    .withStartupTimeout(30_000)
    .start();
  return { ...wrap(container, port, NATS_READY), url: `nats://127.0.0.1:${port}` };
}

/** Containers of earlier runs whose process is gone (a crash or a kill -9 of the test). */
export async function removeStaleInfra(): Promise<void> {
  const { stdout } = await exec('docker', ['ps', '-aq', '--filter', `label=${E2E_LABEL}`, '--format', `{{.ID}} {{.Label "${E2E_LABEL}"}}`]);
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [id, run] = line.split(' ');
    const pid = Number(run?.split('p')[1]);
    if (!id || !Number.isInteger(pid)) continue;
    try {
      process.kill(pid, 0);
      continue; // its run is still going
    } catch {
      /* gone */
    }
    await exec('docker', ['rm', '-f', '-v', id]).catch(() => undefined);
  }
}
