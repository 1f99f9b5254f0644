import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { keyFromSeed } from '@nebula/bus-auth';
import { createTestDatabase } from '@nebula/db';
import { ensureStreams } from '@nebula/messaging';
import { fatalLogLine, freePort, startNatsServer, type TestNatsServer, waitFor } from '@nebula/test-kit';
import { writeCredentialFile } from '@nebula/worker';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stackBusDir } from '../src/stack-bus.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function run(entry: string, env: Record<string, string>): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [join(ROOT, entry)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

// The stack's bus credentials (tools/stack.sh made them): each service connects as itself.
const bus = stackBusDir();
const BUS_ENV: Record<string, Record<string, string>> = {
  api: { NATS_CREDS: bus.apiCreds, BUS_KEYS_FILE: bus.controlPlaneKeys },
  notifier: { NATS_CREDS: bus.notifierCreds },
  worker: {},
};

for (const [service, variable, bad] of [
  ['api', 'API_PORT', 'not-a-port'],
  ['worker', 'APP_NAME', 'web,bad.name'],
  ['notifier', 'NATS_URL', 'not a url'],
] as const) {
  test(`${service}: a wrong ${variable} stops it with a message naming the variable`, async () => {
    const r = run(`services/${service}/src/main.ts`, { ...BUS_ENV[service], [variable]: bad });
    assert.is(await r.exited, 2);
    const line = fatalLogLine(r.output());
    assert.is(line.level, 60, 'a fatal JSON log line');
    assert.equal(line.variables, [variable]);
    assert.match(line.msg, variable);
  });
}

// Security stays on, as users run it: the API's /metrics answers only with credentials.
const METRICS_AUTH = { user: 'entrypoint', password: `pw-${process.pid}-${Date.now()}` };
const metricsHeaders = { authorization: `Basic ${Buffer.from(`${METRICS_AUTH.user}:${METRICS_AUTH.password}`).toString('base64')}` };

/**
 * A worker that joined before: its credentials file as the join leaves it (key seed, JWT, the
 * control plane key), and a NEBULA_URL where nothing answers: while the JWT is valid the worker runs,
 * its renewals failing in the log only.
 */
async function joinedWorkerEnv(nats: TestNatsServer, hostId: string): Promise<{ env: Record<string, string>; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-entrypoint-'));
  const host = await nats.hostCreds(hostId, []);
  const jwt = /-----BEGIN NATS USER JWT-----\s+(\S+)\s+------END NATS USER JWT------/.exec(host.creds)?.[1] ?? '';
  const file = join(dir, 'credentials.json');
  const nebulaUrl = `http://127.0.0.1:${await freePort()}`;
  writeCredentialFile(file, {
    v: 1,
    host_id: hostId,
    nebula_url: nebulaUrl,
    seed: host.seed,
    jwt,
    expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    received_at: new Date().toISOString(),
    control_plane_key: keyFromSeed(nats.keys.message_signing_seed).getPublicKey(),
    apps: [],
  });
  return { env: { NEBULA_CREDENTIALS_FILE: file, NEBULA_URL: nebulaUrl }, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A NATS (operator mode, as installed) and for the api and the notifier a database of their own, and
 * the creds and keys files they read: the service starts as on a fresh machine, whatever earlier tests
 * did to the stack's shared database and bus.
 */
async function ownBus(service: 'api' | 'notifier' | 'worker'): Promise<{ nats: TestNatsServer; env: Record<string, string>; cleanup: () => Promise<void> }> {
  const nats = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), `nebula-entrypoint-${service}-`));
  const env: Record<string, string> = { NATS_URL: nats.url };
  let dropDb = async () => {};
  if (service !== 'worker') {
    const db = await createTestDatabase();
    dropDb = db.drop;
    env.DATABASE_URL = db.url;
    env.NATS_CREDS = join(dir, `${service}.creds`);
    writeFileSync(env.NATS_CREDS, nats.creds[service], { mode: 0o600 });
  }
  if (service === 'api') {
    env.BUS_KEYS_FILE = join(dir, 'control-plane.json');
    writeFileSync(env.BUS_KEYS_FILE, JSON.stringify(nats.keys), { mode: 0o600 });
  }
  return {
    nats,
    env,
    async cleanup() {
      await nats.cleanup();
      await dropDb();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

for (const [service, portVar, extra] of [
  ['api', 'API_PORT', { API_HOST: '127.0.0.1', BASIC_AUTH_USER: METRICS_AUTH.user, BASIC_AUTH_PASSWORD: METRICS_AUTH.password }],
  ['notifier', 'METRICS_PORT', {}],
  ['worker', 'METRICS_PORT', { APP_NAME: '', HOST_ID: 'entrypoint-test' }],
] as const) {
  test(`${service}: health and metrics answer, SIGTERM stops it cleanly`, async () => {
    const port = await freePort();
    // The worker's NATS has no streams yet, as on a fresh machine where it starts before the API and
    // the notifier: its /health says so (503) until the owners have made them.
    const own = await ownBus(service);
    const joined = service === 'worker' ? await joinedWorkerEnv(own.nats, 'entrypoint-test') : undefined;
    const r = run(`services/${service}/src/main.ts`, { [portVar]: String(port), LOG_LEVEL: 'info', ...extra, ...own.env, ...(joined?.env ?? {}) });
    // A start that does not come names what the service printed.
    const waitForService = <T>(what: string, check: () => Promise<T | undefined>) =>
      waitFor(what, check, 20_000).catch((err: Error) => {
        throw new Error(`${err.message}; the ${service} printed:\n${r.output()}`);
      });
    try {
      if (service === 'worker') {
        const waiting = await waitForService('worker /health while it waits for the streams', async () => {
          const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
          return res ? { status: res.status, body: (await res.json()) as { checks: Record<string, boolean>; state: string } } : undefined;
        });
        assert.is(waiting.status, 503);
        assert.equal(waiting.body.checks.worker, false);
        assert.is(waiting.body.state, 'starting');
        const nc = await connect(own.nats.connectOptions('admin'));
        await ensureStreams(await jetstreamManager(nc), ['apps', 'results', 'hosts']);
        await nc.close();
      }
      const health = await waitForService(`${service} /health`, async () => {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        return res.status === 200 ? ((await res.json()) as { ok: boolean }) : undefined;
      });
      assert.is(health.ok, true);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: metricsHeaders })).text();
      assert.match(metrics, `process_cpu_user_seconds_total{service="${service}"}`);
      if (service === 'worker') assert.match(metrics, '# TYPE nebula_worker_messages_rejected_total counter');
      r.proc.kill('SIGTERM');
      assert.is(await r.exited, 0, r.output());
      const lines = r
        .output()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string });
      assert.ok(
        lines.every((l) => typeof l.msg === 'string'),
        'every line is JSON',
      );
      assert.ok(lines.some((l) => l.msg === 'stopped'));
    } finally {
      r.proc.kill('SIGKILL');
      await r.exited;
      await own.cleanup();
      joined?.cleanup();
    }
  });
}

test('stack: status reports every component up, and up again starts nothing twice', () => {
  // The process behind each address must be the same one after a second `up`.
  const owner = (port: number) =>
    execFileSync('sh', ['-c', `ss -ltnpH 'sport = :${port}' | grep -o 'pid=[0-9]*' | head -1`])
      .toString()
      .trim();
  const dockerd = () => execFileSync('sh', ['-c', 'cat /var/run/docker.pid 2>/dev/null || true']).toString().trim();
  const snapshot = () => ({ postgres: owner(5432), nats: owner(4222), registry: owner(5000), dockerd: dockerd() });
  const before = snapshot();
  assert.ok(
    Object.values(before).every((v) => v !== ''),
    JSON.stringify(before),
  );
  execFileSync('bash', [join(ROOT, 'tools/stack.sh'), 'up'], { stdio: 'pipe' });
  assert.equal(snapshot(), before);
  const status = execFileSync('bash', [join(ROOT, 'tools/stack.sh'), 'status']).toString();
  for (const c of ['postgresql', 'nats', 'docker', 'registry']) assert.match(status, new RegExp(`^${c}\\s+up`, 'm'));
  assert.match(
    status,
    new RegExp(`^nats\\s+up\\s+\\S+\\s+nats-server ${(process.env.NEBULA_NATS_VERSION ?? 'unset').replaceAll('.', '\\.')}, operator mode`, 'm'),
  );
});

test.run();
