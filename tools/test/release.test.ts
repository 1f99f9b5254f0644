/**
 * The release build, through `npm run release`'s own script (tools/src/release/run.ts): bundles that
 * run on plain Node from a folder with no node_modules, and images with their labels, health check,
 * user and tags, started with the real engine. A second run reuses what the first built.
 * Nothing here needs PostgreSQL or NATS: the containers stop at their config, at their join, or
 * wait for a NATS that is not there.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureBusDirectory } from '@nebula/bus-auth';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { removeRunInfra, startNats, startPostgres } from '../src/e2e/infra.ts';
import { exec } from '../src/release/exec.ts';
import { imageTags, type ReleaseRow, SERVICES, type Service, WORKER_RUNTIME } from '../src/release/plan.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const LABEL = 'io.nebula.test=true';
const docker = (args: string[], timeoutMs = 60_000) => exec('docker', args, { timeoutMs });

const t0 = performance.now();
const release = spawnSync(process.execPath, [join(ROOT, 'tools/src/release/run.ts'), '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 15 * 60_000 });
if (release.status !== 0) throw new Error(`npm run release failed (${release.status}): ${release.stderr}`);
const built = JSON.parse(release.stdout) as { bundles: Array<{ service: Service; dir: string; built: boolean }>; images: ReleaseRow[] };
console.log(
  `release: ${((performance.now() - t0) / 1000).toFixed(1)} s; bundles ${built.bundles.map((b) => `${b.service} ${b.built ? 'built' : 'reused'}`).join(', ')}; images ${built.images.map((i) => `${i.image} ${i.built ? 'built' : 'reused'}`).join(', ')}`,
);

interface Inspect {
  Id: string;
  RepoTags: string[];
  Config: {
    User: string;
    Labels: Record<string, string>;
    Env: string[];
    Entrypoint: string[];
    Volumes: Record<string, unknown> | null;
    Healthcheck?: { Test: string[] };
  };
}
async function inspect(ref: string): Promise<Inspect> {
  return (JSON.parse(await docker(['image', 'inspect', ref])) as Inspect[])[0] as Inspect;
}

/** `docker run` to its end (no -d): exit code and output. Async: a server of the test may answer meanwhile. */
function runContainer(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('docker', ['run', '--rm', '--label', LABEL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

function lastJsonLine(out: string): { level: number; variables?: string[]; msg: string } {
  const lines = out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  return JSON.parse(lines[lines.length - 1] ?? '{}');
}

test('every service has a bundle and an image; the api bundle holds the dashboard (ui/index.html and its hashed assets)', () => {
  assert.equal(built.bundles.map((b) => b.service).sort(), [...SERVICES].sort());
  const api = built.bundles.find((b) => b.service === 'api');
  assert.ok(api && existsSync(join(api.dir, 'ui', 'index.html')), 'dist/api/ui/index.html');
  assert.ok(api && readdirSync(join(api.dir, 'ui', 'assets')).some((f) => /^main-[A-Za-z0-9]+\.js$/.test(f)), 'a hashed main-*.js');
  assert.equal(built.images.map((i) => i.image).sort(), SERVICES.map((s) => `nebula/${s}`).sort());
});

test('each bundle runs with plain node (no type stripping) from a folder with no node_modules', () => {
  const cases: Record<Service, { env: Record<string, string>; args: string[]; code: number; check: (out: string) => void }> = {
    cli: { env: {}, args: ['--help'], code: 0, check: (out) => assert.match(out, 'usage: nebula <command>') },
    api: { env: { API_PORT: 'not-a-port' }, args: [], code: 2, check: (out) => assert.ok(lastJsonLine(out).variables?.includes('API_PORT'), out) },
    notifier: { env: { METRICS_PORT: 'nope' }, args: [], code: 2, check: (out) => assert.ok(lastJsonLine(out).variables?.includes('METRICS_PORT'), out) },
    worker: { env: { APP_NAME: 'web,bad.name' }, args: [], code: 2, check: (out) => assert.equal(lastJsonLine(out).variables, ['APP_NAME'], out) },
  };
  for (const b of built.bundles) {
    const dir = mkdtempSync(join(tmpdir(), `nebula-bundle-${b.service}-`));
    try {
      cpSync(b.dir, dir, { recursive: true });
      for (let d = dir; d !== dirname(d); d = dirname(d)) assert.not.ok(existsSync(join(d, 'node_modules')), `${d}/node_modules exists`);
      // Every static import is one of Node's own modules: nothing to install.
      const imports = [...readFileSync(join(dir, 'main.js'), 'utf8').matchAll(/^import\s[^;]*?from\s*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
      for (const spec of imports) assert.ok(spec?.startsWith('node:'), `${b.service} imports ${spec}`);
      const c = cases[b.service];
      const r = spawnSync(process.execPath, ['--no-experimental-strip-types', 'main.js', ...c.args], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: dir, ...c.env },
        encoding: 'utf8',
        timeout: 30_000,
      });
      const out = `${r.stdout}${r.stderr}`;
      assert.is(r.status, c.code, `${b.service}: ${out}`);
      c.check(out);
      assert.not.match(out, /Cannot find (module|package)|ERR_MODULE_NOT_FOUND|Dynamic require/, `${b.service}: ${out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test("the worker's lazy modules (BuildKit session, ssh:// transport) sit in lazy/, not in main.js, and load from a folder with no node_modules", () => {
  const worker = built.bundles.find((b) => b.service === 'worker');
  assert.ok(worker);
  const files = readdirSync(join(worker.dir, 'lazy')).filter((f) => f.endsWith('.cjs'));
  assert.equal(files.sort(), ['docker-modem-ssh.cjs', 'dockerode-session.cjs']);
  const main = readFileSync(join(worker.dir, 'main.js'), 'utf8');
  for (const f of files) assert.ok(main.includes(`"./lazy/${f}"`), `main.js loads lazy/${f}`);
  // ssh2's identification string and grpc-js's user agent: the code itself is not inlined.
  assert.not.ok(main.includes('SSH-2.0-ssh2js'), 'no ssh2 in main.js');
  assert.not.ok(main.includes('grpc-node-js'), 'no @grpc/grpc-js in main.js');
  const dir = mkdtempSync(join(tmpdir(), 'nebula-bundle-lazy-'));
  try {
    cpSync(worker.dir, dir, { recursive: true });
    const r = spawnSync(process.execPath, ['-e', `for (const f of ${JSON.stringify(files)}) process.stdout.write(typeof require('./lazy/' + f) + ' ')`], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), 'function function');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('images: OCI labels, both tags on one image, a health check on /health, the user; the worker as its runtime settings say', async () => {
  for (const service of SERVICES) {
    const [versioned, latest] = imageTags(service, VERSION) as [string, string];
    const img = await inspect(versioned);
    assert.is((await inspect(latest)).Id, img.Id, `${latest} is ${versioned}`);
    const labels = img.Config.Labels;
    for (const k of ['title', 'description', 'version', 'revision', 'created', 'source', 'licenses']) {
      assert.ok((labels[`org.opencontainers.image.${k}`] ?? '').length > 0, `${service}: label org.opencontainers.image.${k}`);
    }
    assert.is(labels['org.opencontainers.image.version'], VERSION);
    assert.is(labels['org.opencontainers.image.title'], `nebula-${service}`);
    assert.ok(!Number.isNaN(Date.parse(labels['org.opencontainers.image.created'] ?? '')), 'created is a date');
    if (service === 'cli') {
      assert.is(img.Config.Healthcheck, undefined, 'a command has no health check');
    } else {
      const check = img.Config.Healthcheck?.Test.join(' ') ?? '';
      assert.match(check, /^CMD node -e .*\/health/, `${service}: ${check}`);
    }
    if (service === 'worker') {
      assert.ok(img.Config.User === '0:0' || img.Config.User === '', `worker user ${img.Config.User}`);
      assert.equal(img.Config.Entrypoint, ['node', ...WORKER_RUNTIME.nodeArgs, '/app/main.js'], 'the Dockerfile runs the worker as WORKER_RUNTIME says');
      for (const [k, v] of Object.entries(WORKER_RUNTIME.env)) assert.ok(img.Config.Env.includes(`${k}=${v}`), `${k}=${v}`);
      assert.ok(img.Config.Env.includes('NEBULA_CREDENTIALS_FILE=/var/lib/nebula/credentials.json'));
      assert.ok(img.Config.Env.includes('MACHINE_ID_FILE=/etc/machine-id'));
      assert.ok(img.Config.Volumes && '/var/lib/nebula' in img.Config.Volumes, 'the credentials live on a volume');
    } else {
      assert.is(img.Config.User, '10001:10001', `${service} runs as uid 10001`);
      assert.equal(img.Config.Entrypoint, ['node', '/app/main.js']);
    }
  }
});

test('a container with a bad config exits 2 with the config error (notifier, api)', async () => {
  const notifier = await runContainer(['-e', 'METRICS_PORT=nope', `nebula/notifier:${VERSION}`]);
  assert.is(notifier.code, 2, notifier.out);
  assert.ok(lastJsonLine(notifier.out).variables?.includes('METRICS_PORT'), notifier.out);
  const api = await runContainer([`nebula/api:${VERSION}`]);
  assert.is(api.code, 2, api.out);
  assert.equal(lastJsonLine(api.out).variables, ['NATS_CREDS', 'BUS_KEYS_FILE'], api.out);
});

test('a worker container with neither HOST_ID nor a machine id stops, naming both, never falling back to its hostname', async () => {
  const empty = join(mkdtempSync(join(tmpdir(), 'nebula-mid-')), 'machine-id');
  writeFileSync(empty, '\n');
  try {
    for (const mount of [[], ['-v', `${empty}:/etc/machine-id:ro`]]) {
      const r = await runContainer(['--hostname', 'worker-hostname', ...mount, `nebula/worker:${VERSION}`]);
      assert.is(r.code, 2, r.out);
      const line = lastJsonLine(r.out);
      assert.equal(line.variables, ['HOST_ID', 'MACHINE_ID_FILE'], r.out);
      assert.not.match(r.out, 'worker-hostname');
    }
  } finally {
    rmSync(dirname(empty), { recursive: true, force: true });
  }
});

test("a worker container joins as the host's machine id, the same in every new container; HOST_ID wins", async () => {
  // A stand-in for the API's join route on loopback: it records the host id, then refuses.
  const seen: string[] = [];
  const api = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/api/v2/hosts/join') seen.push((JSON.parse(body) as { host_id: string }).host_id);
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"forbidden","message":"test"}');
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const port = (api.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'nebula-mid-'));
  const machineId = randomBytes(16).toString('hex');
  writeFileSync(join(dir, 'machine-id'), `${machineId}\n`);
  const token = `nebula-join.${'0'.repeat(32)}.01234567-89ab-cdef-0123-456789abcdef.${randomBytes(16).toString('hex')}`;
  const args = (extra: string[]) => [
    // Host networking reaches the stand-in on 127.0.0.1; each run is a new container (--rm).
    '--network',
    'host',
    '-v',
    '/var/run/docker.sock:/var/run/docker.sock',
    '-v',
    `${join(dir, 'machine-id')}:/etc/machine-id:ro`,
    '-e',
    `NEBULA_URL=http://127.0.0.1:${port}`,
    '-e',
    `NEBULA_JOIN_TOKEN=${token}`,
    '-e',
    'APP_NAME=web',
    ...extra,
    `nebula/worker:${VERSION}`,
  ];
  try {
    const runs = [args([]), args([]), args(['-e', 'HOST_ID=edge-7'])];
    for (const a of runs) {
      const r = await runContainer(a);
      assert.is(r.code, 1, r.out);
      assert.match(r.out, /was refused: HTTP 403/);
    }
    assert.equal(seen, [machineId, machineId, 'edge-7']);
  } finally {
    api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docker stop: node as PID 1 handles SIGTERM and exits 0, even while still starting (the api waiting for NATS)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-release-bus-'));
  const bus = await ensureBusDirectory(join(dir, 'bus'));
  // The api runs as uid 10001: its files must be readable by it (they stay mode 600).
  execFileSync('chown', ['-R', '10001:10001', bus.dir], { timeout: 10_000 });
  const name = `nebula-release-stop-${randomBytes(3).toString('hex')}`;
  try {
    await docker([
      'run',
      '-d',
      '--name',
      name,
      '--label',
      LABEL,
      '-v',
      `${bus.dir}:/bus:ro`,
      '-e',
      'NATS_CREDS=/bus/api.creds',
      '-e',
      'BUS_KEYS_FILE=/bus/control-plane.json',
      '-e',
      `AUTH_TOKEN=${randomBytes(16).toString('hex')}`,
      // Nothing listens there inside the container: the api waits for NATS, in its start.
      '-e',
      'NATS_URL=nats://127.0.0.1:4222',
      `nebula/api:${VERSION}`,
    ]);
    const until = Date.now() + 30_000;
    while (!(await docker(['logs', name])).includes('"auth: ')) {
      if (Date.now() > until) throw new Error(`the api did not start: ${await docker(['logs', name])}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await docker(['stop', '-t', '20', name], 60_000);
    const state = JSON.parse(await docker(['inspect', '-f', '{{json .State}}', name])) as { ExitCode: number; OOMKilled: boolean };
    const logs = await docker(['logs', name]);
    assert.is(state.ExitCode, 0, `exit code ${state.ExitCode} (137: killed at the end of the stop timeout): ${logs}`);
    assert.match(logs, /shutting down while starting/);
  } finally {
    await docker(['rm', '-f', name]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the api image serves the dashboard at /ui/: index.html with the CSP, a hashed asset cached for good (against a real PostgreSQL and a secured NATS)', async () => {
  const runId = `rel${randomBytes(2).toString('hex')}p${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'nebula-release-ui-'));
  const name = `nebula-release-ui-${randomBytes(3).toString('hex')}`;
  try {
    const bus = await ensureBusDirectory(join(dir, 'bus'), { resolverDir: '/data/accounts' });
    const [pg, nats] = await Promise.all([startPostgres(runId), startNats(runId, bus)]);
    execFileSync('chown', ['-R', '10001:10001', bus.dir], { timeout: 10_000 });
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    await docker([
      'run',
      '-d',
      '--name',
      name,
      '--label',
      LABEL,
      '--network',
      'host',
      '-v',
      `${bus.dir}:${bus.dir}:ro`,
      '-e',
      `NATS_CREDS=${bus.apiCreds}`,
      '-e',
      `BUS_KEYS_FILE=${bus.controlPlaneKeys}`,
      '-e',
      `NATS_URL=${nats.url}`,
      '-e',
      `DATABASE_URL=${pg.url}`,
      '-e',
      `AUTH_TOKEN=${randomBytes(16).toString('hex')}`,
      '-e',
      `API_PORT=${port}`,
      '-e',
      'API_HOST=127.0.0.1',
      `nebula/api:${VERSION}`,
    ]);
    const base = `http://127.0.0.1:${port}`;
    const until = Date.now() + 60_000;
    for (;;) {
      const up = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (Date.now() > until) throw new Error(`the api did not start: ${await docker(['logs', name])}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const page = await fetch(`${base}/ui/`, { signal: AbortSignal.timeout(5000) });
    const html = await page.text();
    assert.is(page.status, 200, html);
    assert.match(page.headers.get('content-type') ?? '', 'text/html');
    assert.match(page.headers.get('content-security-policy') ?? '', "script-src 'self'");
    assert.match(html, '<div id="root">');
    const asset = /src="(\/ui\/assets\/main-[A-Za-z0-9]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, `index.html names a hashed script: ${html}`);
    const js = await fetch(`${base}${asset}`, { signal: AbortSignal.timeout(5000) });
    assert.is(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', 'text/javascript');
    assert.match(js.headers.get('cache-control') ?? '', 'immutable');
    assert.ok((await js.arrayBuffer()).byteLength > 10_000, 'the bundle is there');
  } finally {
    await docker(['rm', '-f', name]).catch(() => undefined);
    await removeRunInfra(runId).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second run reuses every bundle and image', () => {
  const again = spawnSync(process.execPath, [join(ROOT, 'tools/src/release/run.ts'), '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 5 * 60_000 });
  assert.is(again.status, 0, again.stderr);
  const r = JSON.parse(again.stdout) as typeof built;
  assert.equal(
    r.bundles.filter((b) => b.built).map((b) => b.service),
    [],
  );
  assert.equal(
    r.images.filter((i) => i.built).map((i) => i.image),
    [],
  );
  assert.equal(
    r.images.map((i) => i.id),
    built.images.map((i) => i.id),
  );
  assert.ok(readdirSync(join(ROOT, 'dist')).length >= SERVICES.length);
});

test.run();
