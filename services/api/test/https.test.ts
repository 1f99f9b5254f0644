import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { makeTestCa, type TestCa, waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiServer } from '../src/index.ts';
import { ADMIN, basicHeader, spawnApi, startEnv, type TestEnv, uniqueName } from './helpers.ts';

/**
 * HTTPS (API_TLS_CERT, API_TLS_KEY): the API serves TLS with a certificate of a private CA; a
 * client that trusts the CA gets answers, one that does not (or speaks plain HTTP) gets none. The
 * join command names https://. Our CLI and the worker's join client reach it with the CA given as
 * NODE_EXTRA_CA_CERTS (Node's fetch honours it), as the README says.
 */
const test = suite('https');
let env: TestEnv;
let ca: TestCa;
let api: ApiServer;

const CLI_MAIN = new URL('../../cli/src/main.ts', import.meta.url).pathname;
const CONTROL_PLANE_CLIENT = new URL('../../worker/src/identity/control-plane-client.ts', import.meta.url).href;

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

/** A request over node:https trusting `caPem` (none: the system's CAs only). */
function httpsCall(url: string, opts: { method?: string; body?: unknown; caPem?: string; auth?: boolean } = {}): Promise<Answer> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string> = {};
  if (opts.auth !== false) headers.authorization = basicHeader();
  if ((opts.method ?? 'GET') !== 'GET') headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers, ...(opts.caPem ? { ca: opts.caPem } : {}), timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A child process with its own environment (only PATH of ours), killed after 30 s. */
function run(args: string[], vars: Record<string, string>, stdin = ''): Promise<Run> {
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...vars }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')}: no exit within 30 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

const cli = (args: string[], extra: Record<string, string> = {}, stdin = '') =>
  run([CLI_MAIN, ...args], { NEBULA_URL: api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password, ...extra }, stdin);

test.before(async () => {
  env = await startEnv();
  ca = makeTestCa();
  api = await env.startApi({ server: { tls: { cert: ca.cert, key: ca.key } } });
});
test.after(async () => {
  await env.close();
  ca?.remove();
});

test('served over https: the URL says so; a client trusting the CA is answered, changes included', async () => {
  assert.match(api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const health = await httpsCall(`${api.url}/health`, { caPem: ca.ca, auth: false });
  assert.is(health.status, 200, health.text);
  const name = uniqueName();
  const created = await httpsCall(`${api.url}/api/v2/apps/${name}`, { method: 'POST', body: { docker_image: 'nginx' }, caPem: ca.ca });
  assert.is(created.status, 200, created.text);
  assert.is((await httpsCall(`${api.url}/api/v2/apps/${name}`, { caPem: ca.ca })).status, 200);
  // Also by the name the certificate carries besides the address.
  assert.is((await httpsCall(`https://localhost:${api.port}/health`, { caPem: ca.ca, auth: false })).status, 200);
});

test('the join command names https:// (the request origin with the scheme the API serves)', async () => {
  const r = await httpsCall(`${api.url}/api/v2/hosts/join_tokens`, { method: 'POST', body: { uses: 1, apps: ['web'] }, caPem: ca.ca });
  assert.is(r.status, 200, r.text);
  assert.match((r.json as { command: string }).command, new RegExp(`^NEBULA_URL=https://127\\.0\\.0\\.1:${api.port} NATS_URL=\\S+ NEBULA_JOIN_TOKEN=`));
});

test('no answer without the CA, nor over plain http on the same port', async () => {
  const untrusted = await httpsCall(`${api.url}/health`, { auth: false }).then(
    (a) => `answered ${a.status}`,
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
  assert.match(untrusted, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|CERT/, 'the certificate is not trusted');
  const viaFetch = await fetch(`${api.url}/health`, { signal: AbortSignal.timeout(5000) }).then(
    (r) => `answered ${r.status}`,
    (err: Error) => `${err.name}: ${(err.cause as { code?: string } | undefined)?.code ?? err.message}`,
  );
  assert.match(viaFetch, /^TypeError: /, `this process's fetch does not trust the CA: ${viaFetch}`);
  const plain = await fetch(`http://127.0.0.1:${api.port}/health`, { signal: AbortSignal.timeout(5000) }).then(
    (r) => `answered ${r.status}`,
    (err: Error) => `${err.name}: ${(err.cause as { message?: string } | undefined)?.message ?? err.message}`,
  );
  assert.not.match(plain, /^answered/, `plain http got an answer: ${plain}`);
  assert.not.match(plain, /TimeoutError/, `plain http is refused at once, not left hanging: ${plain}`);
});

test('the CLI over https with NODE_EXTRA_CA_CERTS: mutations, queries and a watch; without it, a clear error', async () => {
  const trust = { NODE_EXTRA_CA_CERTS: ca.caFile };
  const name = uniqueName('cli');
  const created = await cli(['apps', 'create', name, '-f', '-', '--json'], trust, JSON.stringify({ docker_image: 'nginx:1' }));
  assert.is(created.code, 0, created.stderr);
  assert.is((JSON.parse(created.stdout) as { app_name: string }).app_name, name);
  const list = await cli(['apps', 'list', '--json'], trust);
  assert.is(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(name));
  // The watch is a server-sent event stream (eventsource over fetch): no host runs the app, so the
  // rollout is complete at once without anyone applying it (exit 3), which it can only say after
  // reading the stream.
  const stop = await cli(['apps', 'stop', name, '--wait', '--timeout', '20s', '--json'], trust);
  assert.is(stop.code, 3, `${stop.stdout}\n${stop.stderr}`);
  assert.match(stop.stdout, /"complete":\s*true/);
  const token = await cli(['hosts', 'join-token', 'create', '--apps', 'web', '--json'], trust);
  assert.is(token.code, 0, token.stderr);
  assert.match((JSON.parse(token.stdout) as { command: string }).command, /^NEBULA_URL=https:\/\//);

  const untrusted = await cli(['apps', 'list']);
  assert.is(untrusted.code, 1);
  assert.match(untrusted.stderr, /cannot reach the Nebula API at https:\/\/127\.0\.0\.1:\d+ .*(certificate|UNABLE_TO_VERIFY)/i);
});

test("the worker's join client over https with NODE_EXTRA_CA_CERTS gets its credential", async () => {
  const created = await httpsCall(`${api.url}/api/v2/hosts/join_tokens`, { method: 'POST', body: { uses: 2, apps: ['web'] }, caPem: ca.ca });
  assert.is(created.status, 200, created.text);
  const { createUser } = await import('@nats-io/nkeys');
  const script = join(ca.dir, 'join.mjs');
  writeFileSync(
    script,
    `const { httpControlPlaneClient } = await import(${JSON.stringify(CONTROL_PLANE_CLIENT)});
const client = httpControlPlaneClient(process.env.NEBULA_URL, { timeoutMs: 10000 });
try {
  const cred = await client.join(JSON.parse(process.env.JOIN));
  console.log(JSON.stringify({ ok: true, host_id: cred.host_id, jwt: typeof cred.jwt }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: err.message }));
}
`,
  );
  const join_ = (hostId: string) =>
    JSON.stringify({ token: (created.json as { token: string }).token, host_id: hostId, public_key: createUser().getPublicKey(), apps: ['web'] });
  const hostId = uniqueName('h');
  const trusted = await run([script], { NEBULA_URL: api.url, JOIN: join_(hostId), NODE_EXTRA_CA_CERTS: ca.caFile });
  assert.is(trusted.code, 0, trusted.stderr);
  const answer = JSON.parse(trusted.stdout) as { ok: boolean; host_id?: string; error?: string };
  assert.ok(answer.ok, answer.error);
  assert.is(answer.host_id, hostId);
  const untrusted = JSON.parse((await run([script], { NEBULA_URL: api.url, JOIN: join_(uniqueName('h')) })).stdout) as { ok: boolean; error: string };
  assert.not.ok(untrusted.ok);
  assert.match(untrusted.error, /certificate|UNABLE_TO_VERIFY/i);
});

test('the API process: API_TLS_CERT + API_TLS_KEY serve https; one alone, an unreadable file or a wrong key stop it', async () => {
  const base = { DATABASE_URL: env.dbUrl, ...env.busVars, BASIC_AUTH_USER: ADMIN.user, BASIC_AUTH_PASSWORD: ADMIN.password };
  const p = await spawnApi({ ...base, API_TLS_CERT: ca.certFile, API_TLS_KEY: ca.keyFile }, { waitHealthy: false });
  try {
    const url = `https://127.0.0.1:${p.port}`;
    await waitFor(
      'api process healthy over https',
      async () => {
        if (p.proc.exitCode !== null) throw new Error(`api exited ${p.proc.exitCode}: ${p.output()}`);
        return (await httpsCall(`${url}/health`, { caPem: ca.ca, auth: false }).catch(() => ({ status: 0 }))).status === 200;
      },
      20_000,
      100,
    );
    assert.match(p.output(), new RegExp(`api listening on https://127\\.0\\.0\\.1:${p.port}`));
    const r = await httpsCall(`${url}/api/v2/hosts/join_tokens`, { method: 'POST', body: { uses: 1 }, caPem: ca.ca });
    assert.is(r.status, 200, r.text);
    assert.match((r.json as { command: string }).command, /^NEBULA_URL=https:\/\//);
  } finally {
    assert.is(await p.stop(), 0);
  }
  assert.not.ok(p.output().includes(ca.key.split('\n')[1] ?? '-'), 'no key material in the log');

  for (const [what, vars, pattern] of [
    ['cert alone', { API_TLS_CERT: ca.certFile }, /API_TLS_CERT and API_TLS_KEY must be set together \(only API_TLS_CERT is set\)/],
    ['key alone', { API_TLS_KEY: ca.keyFile }, /API_TLS_CERT and API_TLS_KEY must be set together \(only API_TLS_KEY is set\)/],
    ['missing file', { API_TLS_CERT: join(ca.dir, 'nope.pem'), API_TLS_KEY: ca.keyFile }, /API_TLS_CERT: cannot read .*nope\.pem: ENOENT/],
    [
      'key of another certificate',
      { API_TLS_CERT: ca.certFile, API_TLS_KEY: join(ca.dir, 'ca.key') },
      /API_TLS_CERT \/ API_TLS_KEY: not a PEM certificate and its private key/,
    ],
    ['not PEM', { API_TLS_CERT: join(ca.dir, 'san.ext'), API_TLS_KEY: ca.keyFile }, /API_TLS_CERT \/ API_TLS_KEY: not a PEM certificate and its private key/],
  ] as const) {
    const bad = await spawnApi({ ...base, ...vars }, { waitHealthy: false });
    const code = await bad.exited;
    assert.is(code, 2, `${what}: exit code 2, as for every config error (runService): ${bad.output()}`);
    assert.match(bad.output(), pattern, what);
    assert.not.ok(bad.output().includes(ca.key.split('\n')[1] ?? '-'), `${what}: no key material in the log`);
  }
});

test.run();
