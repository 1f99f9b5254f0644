import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Host, JoinTokenCreated } from '@nebula/contracts';
import { cleanupStaleFleets, type Fleet, freePort, makeTestCa, startFleet, type TestHost, waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type ComposeProject,
  composeProject,
  ensureReleaseImages,
  PROJECT_PREFIX,
  releaseImages,
  removeStaleProjects,
  scrubRunDir,
} from '../src/e2e/compose.ts';
import { E2E_DIR } from '../src/e2e/harness.ts';
import { containersOn, onHosts, waitConverged } from '../src/e2e/observe.ts';
import { REPO_ROOT } from '../src/e2e/processes.ts';
import { Report } from '../src/e2e/report.ts';
import { RestClient } from '../src/e2e/rest.ts';
import { runSecrets, scanLogs } from '../src/e2e/secret-scan.ts';
import { createdSince, ECHO } from '../src/e2e/steps.ts';
import { documentedDockerCommand, envOf, workerRunArgs } from '../src/e2e/worker-container.ts';

/**
 * The release as an operator runs it: the images of `npm run release`, the control plane from
 * deploy/compose.yaml (PostgreSQL, NATS, two API replicas, a notifier; the local test images for
 * PostgreSQL and NATS), and on each of two hosts (own network namespace and Docker engine) the
 * worker image started with the `docker run` a join token prints. Everything is asked of the API in
 * its container and checked on the hosts from outside. A worker container re-created on its host
 * (same machine id, same volume) is the same host and adopts the app's containers.
 */
const test = suite('e2e compose: the release images on one server and two hosts');
const report = new Report('tools/test/e2e-6-compose.test.ts');
const exec = promisify(execFile);

const APP = 'web';
const PORT = 8300;
const WORKER_IMAGE = releaseImages().worker;
const WORKER = 'nebula-worker';
/**
 * The name NATS goes by. A name, not an address: the NATS client checks a server reached at an IP
 * address against "localhost" (it sends no TLS server name for an IP), so a certificate for an IP
 * fails.
 */
const NATS_NAME = 'nats.nebula-e2e.test';
// Short stop timeout: the echo image's httpd ignores SIGTERM. Heartbeats every 2 s (default 5).
const WORKER_ENV = { STOP_TIMEOUT_SECONDS: '1', HEARTBEAT_INTERVAL_SECONDS: '2', WORKER_SETTLE_SECONDS: '1', LOG_LEVEL: 'info' };

const runId = `${randomBytes(3).toString('hex')}p${process.pid}`;
const runDir = join(E2E_DIR, `compose-${runId}`);
const secret = () => randomBytes(18).toString('hex');
const auth = { user: 'admin', password: secret(), token: secret() };
const postgresPassword = secret();

let fleet: Fleet | undefined;
let project: ComposeProject | undefined;
let rest: RestClient;
let hosts: TestHost[] = [];
let publicUrls: { api: string; nats: string };
let joined: JoinTokenCreated & { docker_command?: string };
/** Per host: its machine id (its host id), and the arguments of its worker's `docker run`. */
const workers = new Map<string, { machineId: string; runArgs: string[] }>();

const log = (s: string) => process.stderr.write(`[e2e-compose] ${s}\n`);
const seconds = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

async function removeWorker(host: TestHost): Promise<void> {
  await host.docker('rm', '-f', WORKER).catch(() => undefined);
}

async function startWorker(host: TestHost): Promise<string> {
  const w = workers.get(host.name);
  if (!w) throw new Error(`no worker settings for ${host.name}`);
  return (await host.docker(...w.runArgs)).trim();
}

/** The worker's log on its host (the container's output). */
async function workerLog(host: TestHost): Promise<string> {
  const { stdout, stderr } = await exec('docker', ['-H', host.dockerHost, 'logs', WORKER], { maxBuffer: 64 * 1024 * 1024, timeout: 30_000 });
  return stdout + stderr;
}

/** The JSON log lines of a worker with this `msg`. */
async function workerLines(host: TestHost, msg: string): Promise<Array<Record<string, unknown>>> {
  return (await workerLog(host))
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const hostsView = async () => (await rest.expect<{ hosts: Host[] }>(200, 'GET', '/api/v2/hosts')).hosts;

/** Everything a case needs: the images, the compose project up, the hosts' engines with the worker image. */
async function start(): Promise<void> {
  const t0 = Date.now();
  mkdirSync(runDir, { recursive: true });
  await Promise.all([removeStaleProjects(E2E_DIR), cleanupStaleFleets()]);
  // The release images (reused when their inputs did not change), Compose v2, the bus's keys, made
  // as deploy/README.md says: its NATS keeps the accounts on its volume, the API and the notifier
  // (uid 10001) read their files.
  const bus = join(runDir, 'bus');
  const [images] = await Promise.all([
    ensureReleaseImages(join(runDir, 'release.log')),
    exec('bash', [join(REPO_ROOT, 'tools/compose.sh'), 'version'], { timeout: 120_000 }),
    exec(process.execPath, [join(REPO_ROOT, 'tools/src/bus-init.ts'), bus, '--resolver-dir', '/data/accounts', '--owner', '10001'], { timeout: 60_000 }),
  ]);
  log(`images: ${images}; ${seconds(t0)}`);

  fleet = await startFleet({ hosts: 2, images: [WORKER_IMAGE, 'nebula/echo:1', ECHO] });
  hosts = fleet.hosts;
  log(`fleet of ${hosts.length} hosts (worker image loaded): ${seconds(t0)}`);

  // What hosts reach: the machine's address on their bridge. NATS goes by a name (its certificate's
  // only one), which hosts resolve to that address and the API and the notifier, inside the compose
  // network, to the NATS container (NATS_TLS_NAME, a network alias).
  const gw = fleet.gateway;
  const ca = makeTestCa({ altNames: [`DNS:${NATS_NAME}`], cn: NATS_NAME });
  const tls = join(runDir, 'tls');
  mkdirSync(tls);
  writeFileSync(join(tls, 'ca.pem'), ca.ca);
  writeFileSync(join(tls, 'nats.pem'), ca.cert);
  writeFileSync(join(tls, 'nats.key'), ca.key, { mode: 0o600 });
  ca.remove();
  const [api1, api2, nats] = [await freePort(), await freePort(), await freePort()];
  publicUrls = { api: `http://${gw}:${api1}`, nats: `tls://${NATS_NAME}:${nats}` };
  const env = {
    POSTGRES_IMAGE: 'nebula/postgres:15',
    NATS_IMAGE: 'nebula/nats:2.10',
    POSTGRES_PASSWORD: postgresPassword,
    BASIC_AUTH_USER: auth.user,
    BASIC_AUTH_PASSWORD: auth.password,
    AUTH_TOKEN: auth.token,
    API_PUBLIC_URL: publicUrls.api,
    NATS_PUBLIC_URL: publicUrls.nats,
    NATS_TLS_NAME: NATS_NAME,
    NEBULA_BUS_DIR: bus,
    NEBULA_TLS_DIR: tls,
    NEBULA_PUBLISH_ADDRESS: gw,
    API_1_PORT: String(api1),
    API_2_PORT: String(api2),
    NATS_PORT: String(nats),
    HEALTHCHECK_INTERVAL: '1s',
  };
  const envFile = join(runDir, 'compose.env');
  writeFileSync(
    envFile,
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  );
  project = composeProject(`${PROJECT_PREFIX}${runId}`, envFile);
  await project.up();
  log(`compose up --wait: ${seconds(t0)}`);
  rest = new RestClient(
    () => [
      { url: `http://${gw}:${api1}`, up: true },
      { url: `http://${gw}:${api2}`, up: true },
    ],
    auth,
  );
  report.setupMs = Date.now() - t0;
}

test.before(async () => {
  try {
    await start();
  } catch (err) {
    // uvu reports only that the cases did not pass: say why (the logs stay in the run folder).
    console.error(`e2e compose: start failed (logs in ${runDir})`, err);
    throw err;
  }
});

test.after(async () => {
  report.write();
  await Promise.allSettled([project?.saveLogs(runDir), ...hosts.map(async (h) => writeFileSync(join(runDir, `worker-${h.name}.log`), await workerLog(h)))]);
  await Promise.allSettled([project?.down(), fleet?.cleanup()]);
  scrubRunDir(runDir);
});

report.case(
  test,
  'scenario',
  'compose: the control plane from deploy/compose.yaml, two hosts join with the printed docker run',
  "compose up --wait with the release images: both API replicas healthy and answering on their published ports, the notifier healthy; a join token (REST, admin token) prints a docker run naming API_PUBLIC_URL and NATS_PUBLIC_URL; that command, run on each host's engine (its socket, its machine id, a volume, the NATS CA), joins both hosts: online in the API under their machine ids",
  async () => {
    const ps = (await project!.compose(['ps', '--format', '{{.Service}} {{.State}} {{.Health}}'])).trim().split('\n').sort();
    assert.equal(ps, ['api-1 running healthy', 'api-2 running healthy', 'nats running ', 'notifier running healthy', 'postgres running healthy']);
    for (const api of [0, 1]) {
      const health = await rest.expect<{ ok: boolean }>(200, 'GET', '/health', { api, auth: null });
      assert.ok(health.ok, `replica ${api + 1} is healthy`);
    }
    joined = await rest.expect(200, 'POST', '/api/v2/hosts/join_tokens', {
      auth: 'bearer',
      body: { ttl_seconds: 600, uses: hosts.length, apps: [APP], description: `e2e compose ${runId}` },
    });
    let printed = joined.docker_command;
    if (printed === undefined) {
      // An API image built elsewhere, before join tokens printed a docker run: its documented form.
      // One built from this checkout (npm run release) must print it.
      assert.not.ok(existsSync(join(REPO_ROOT, 'tools/src/release')), `the API built by npm run release prints no docker_command: ${JSON.stringify(joined)}`);
      log('the API image prints no docker_command (an older build): using the documented form');
      printed = documentedDockerCommand({ apiUrl: publicUrls.api, natsUrl: publicUrls.nats, token: joined.token, apps: [APP], image: WORKER_IMAGE });
    }
    assert.is(envOf(printed, 'NEBULA_URL'), publicUrls.api, 'the printed command names API_PUBLIC_URL');
    assert.is(envOf(printed, 'NATS_URL'), publicUrls.nats, 'the printed command names NATS_PUBLIC_URL');
    assert.is(envOf(printed, 'APP_NAME'), APP);
    assert.is(printed.trim().split(/\s+/).at(-1), WORKER_IMAGE, 'the printed command names the worker image (NEBULA_WORKER_IMAGE)');
    for (const h of hosts) {
      const machineId = randomBytes(16).toString('hex');
      const machineIdFile = join(runDir, `${h.name}.machine-id`);
      writeFileSync(machineIdFile, `${machineId}\n`);
      workers.set(h.name, {
        machineId,
        runArgs: workerRunArgs(printed, {
          dockerSocket: h.dockerHost.replace(/^unix:\/\//, ''),
          machineIdFile,
          natsCaFile: join(runDir, 'tls', 'ca.pem'),
          hosts: { [NATS_NAME]: fleet!.gateway },
          env: WORKER_ENV,
        }),
      });
    }
    await Promise.all(hosts.map(startWorker));
    const want = [...workers.values()].map((w) => w.machineId).sort();
    await waitFor(
      'both hosts online',
      async () => {
        const online = (await hostsView()).filter((x) => x.status === 'online').map((x) => x.id);
        return JSON.stringify(online.sort()) === JSON.stringify(want);
      },
      90_000,
      500,
    );
  },
);

report.case(
  test,
  'scenario',
  'compose: an app and a change through the API reach both hosts',
  "create web (echo image, port 8300) and change its env (REST round robin over both replicas); each host's engine runs it, and HTTP to the host's address and port answers with the new env",
  async (r) => {
    let t = Date.now();
    await rest.expect(200, 'POST', `/api/v2/apps/${APP}`, {
      body: { docker_image: ECHO, starting_ports: [{ [String(PORT)]: '80' }], containers_per: { server: 1 }, env_vars: { V: '1' } },
    });
    const all = hosts.map((h) => h.name);
    r.converged(
      'create',
      await waitConverged(hosts, APP, onHosts(hosts, all, { count: 1, revision: 1, ports: [PORT], env: { V: '1' } }), { since: t, timeoutMs: 90_000 }),
    );
    t = Date.now();
    await rest.expect(202, 'PATCH', `/api/v2/apps/${APP}/update`, { body: { env_vars: { V: '2' } } });
    r.converged(
      'change env',
      await waitConverged(hosts, APP, onHosts(hosts, all, { count: 1, revision: 2, ports: [PORT], env: { V: '2' } }), { since: t, timeoutMs: 90_000 }),
    );
  },
);

report.case(
  test,
  'scenario',
  'compose: a worker container re-created on its host adopts its containers',
  'docker rm -f of host-1\'s worker, then the same docker run (same machine id, same volume; its join token is used up): the same host (no new one in the API), which adopts web (its container id unchanged, no container created on the engine, "adopted" kept 1); a later change reaches both hosts',
  async (r) => {
    const [h1] = hosts;
    assert.ok(h1);
    const before = await containersOn(h1, APP);
    assert.is(before.length, 1);
    const t0 = Date.now();
    // Its first life's log, for the scan of the last case (docker logs shows a container's own).
    writeFileSync(join(runDir, `worker-${h1.name}-before.log`), await workerLog(h1));
    await removeWorker(h1);
    assert.equal(await containersOn(h1, APP), before, 'the app keeps running without its worker');
    await startWorker(h1);
    const adopted = await waitFor(
      `the new worker of ${h1.name} adopted ${APP}`,
      async () => (await workerLines(h1, 'adopted')).find((l) => l.app === APP),
      60_000,
      250,
    );
    assert.equal([adopted.created, adopted.replaced, adopted.removed, adopted.kept], [0, 0, 0, 1], `adopted: ${JSON.stringify(adopted)}`);
    const [started] = await workerLines(h1, 'worker started');
    assert.is(started?.host, workers.get(h1.name)?.machineId, 'the same host id: its machine id');
    assert.equal(await containersOn(h1, APP), before, 'the same container, still running');
    assert.equal(await createdSince(h1, APP, t0), [], 'no container of the app created on the engine');
    const ids = (await hostsView()).map((x) => x.id).sort();
    assert.equal(ids, [...workers.values()].map((w) => w.machineId).sort(), 'no new host in the API');

    const t = Date.now();
    await rest.expect(202, 'PATCH', `/api/v2/apps/${APP}/update`, { body: { env_vars: { V: '3' } } });
    const all = hosts.map((h) => h.name);
    r.converged(
      'change after re-creation',
      await waitConverged(hosts, APP, onHosts(hosts, all, { count: 1, revision: 3, ports: [PORT], env: { V: '3' } }), { since: t, timeoutMs: 90_000 }),
    );
  },
);

report.case(
  test,
  'scenario',
  'compose: no credential in any log line',
  "the logs of every compose service and of both worker containers hold none of: the admin's password, token and basic header, the join token, the PostgreSQL password, any NATS seed or JWT of the bus or of the hosts' credential files",
  async () => {
    await project!.saveLogs(runDir);
    for (const h of hosts) {
      writeFileSync(join(runDir, `worker-${h.name}.log`), await workerLog(h));
      // The host's identity (seed, JWT) from the worker's volume, so the scan knows it.
      await h.docker('cp', `${WORKER}:/var/lib/nebula/credentials.json`, join(runDir, `${h.name}.credentials.json`));
    }
    const secrets = [...runSecrets(runDir, auth, [joined.token]), { label: 'postgres password', value: postgresPassword }];
    const scan = scanLogs(runDir, secrets);
    assert.equal(scan.findings, []);
    assert.ok(scan.logs >= 5 + hosts.length, `${scan.logs} logs`);
    assert.ok(scan.secrets >= 10 + 2 * hosts.length, `${scan.secrets} secrets`);
  },
);

test.run();
