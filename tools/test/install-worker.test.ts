import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/**
 * deploy/install-worker.sh, run for real into a temporary root (`--root`: nothing of this machine is
 * touched, systemctl is not called) with a stand-in bundle (or the real one when dist/worker exists)
 * and this Node 24. The unit it installs is checked by `systemd-analyze verify`, against a copy whose
 * paths point into that root (verify wants the binary of ExecStart to exist).
 */
const REPO = join(import.meta.dirname, '..', '..');
const SCRIPT = join(REPO, 'deploy', 'install-worker.sh');
const UNIT = join(REPO, 'deploy', 'nebula-worker.service');
const NODE = process.execPath;
const TOKEN = `nebula-join.${'a1'.repeat(16)}.0b7c2f7e-5d7a-4a53-9a59-3d1c3f7b8e21.s3cr3t-join-token-${process.pid}-abcdefgh`;
const SCRIPT_TIMEOUT_MS = 120_000;
const temps: string[] = [];

function temp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `nebula-install-${prefix}-`));
  temps.push(dir);
  return dir;
}

/** A stand-in bundle: a main.js that says its version (what the release's dist/worker holds, in small). */
function bundle(version: string, extra = ''): string {
  const dir = temp(`bundle-${version}`);
  writeFileSync(join(dir, 'main.js'), `console.log('worker stand-in ${version}');${extra}\n`);
  writeFileSync(join(dir, 'VERSION'), `${version}\n`);
  mkdirSync(join(dir, 'lib'));
  writeFileSync(join(dir, 'lib', 'chunk.js'), `export const v = '${version}';\n`);
  return dir;
}

interface Run {
  status: number | null;
  out: string;
}

function install(root: string, args: string[], input = ''): Run {
  const r = spawnSync('bash', [SCRIPT, '--root', root, ...args], { input, encoding: 'utf8', timeout: SCRIPT_TIMEOUT_MS });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function installOk(root: string, args: string[], input = ''): Run {
  const r = install(root, args, input);
  assert.is(r.status, 0, `install-worker.sh failed:\n${r.out}`);
  return r;
}

const first = (root: string, b: string, more: string[] = []) =>
  installOk(root, ['--bundle', b, '--node', NODE, '--url', 'https://nebula.example:8080', '--apps', 'web,db', '--join-token-stdin', ...more], `${TOKEN}\n`);

/** The permission bits, in octal as ls and chmod say them. */
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
const at = (root: string, path: string) => join(root, path);

function envOf(root: string): Record<string, string> {
  const lines = readFileSync(at(root, 'etc/nebula/worker.env'), 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));
  return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Every regular file under dir (relative paths) whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p).includes(needle)) found.push(relative(dir, p));
    }
  };
  walk(dir);
  return found.sort();
}

const SYSTEM_UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];

/**
 * `systemd-analyze verify` on the unit installed under `root`, its paths pointed into that root. The
 * machine's docker.service is what Requires= finds; where there is none, a stand-in next to the copy.
 */
function verifyUnit(root: string, text = readFileSync(at(root, 'etc/systemd/system/nebula-worker.service'), 'utf8')): Run {
  const dir = temp('verify');
  writeFileSync(join(dir, 'nebula-worker.service'), text.replaceAll('/opt/nebula/', `${root}/opt/nebula/`).replaceAll('/etc/nebula/', `${root}/etc/nebula/`));
  if (!SYSTEM_UNIT_DIRS.some((d) => existsSync(join(d, 'docker.service'))))
    writeFileSync(join(dir, 'docker.service'), '[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n');
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'nebula-worker.service')], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`systemd-analyze could not run (apt-get install systemd): ${r.error.message}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test.after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

test('installs the bundle, Node 24, the env file (600), the state directory (700) and the unit', () => {
  const root = temp('root');
  const b = bundle('1.2.3');
  const r = first(root, b, ['--host-id', 'gw-17']);
  assert.match(r.out, 'systemd not called');

  assert.is(readlinkSync(at(root, 'opt/nebula/worker/current')), '1.2.3', 'current names the version, relative');
  assert.is(readFileSync(at(root, 'opt/nebula/worker/current/main.js'), 'utf8'), readFileSync(join(b, 'main.js'), 'utf8'));
  assert.ok(existsSync(at(root, 'opt/nebula/worker/current/lib/chunk.js')), 'what sits next to main.js comes along');
  const node = at(root, 'opt/nebula/node/bin/node');
  assert.ok(!lstatSync(node).isSymbolicLink(), 'a copy, not a link to the toolchain');
  assert.is(spawnSync(node, ['--version'], { encoding: 'utf8', timeout: 30_000 }).stdout.trim(), process.version);
  // What the unit runs, run: the installed Node with the installed bundle.
  const ran = spawnSync(node, [at(root, 'opt/nebula/worker/current/main.js')], { encoding: 'utf8', timeout: 30_000 });
  assert.is(ran.stdout.trim(), 'worker stand-in 1.2.3');

  assert.is(mode(at(root, 'etc/nebula/worker.env')), '600');
  assert.is(statSync(at(root, 'etc/nebula/worker.env')).uid, process.getuid?.());
  assert.equal(envOf(root), {
    NEBULA_URL: 'https://nebula.example:8080',
    APP_NAME: 'web,db',
    HOST_ID: 'gw-17',
    NEBULA_JOIN_TOKEN: TOKEN,
    NEBULA_CREDENTIALS_FILE: '/var/lib/nebula/worker/credentials.json',
  });
  assert.is(mode(at(root, 'var/lib/nebula/worker')), '700');
  assert.is(readFileSync(at(root, 'etc/systemd/system/nebula-worker.service'), 'utf8'), readFileSync(UNIT, 'utf8'));
  assert.is(mode(at(root, 'etc/systemd/system/nebula-worker.service')), '644');

  // The token: in the env file and nowhere else, not even in what the script printed.
  assert.equal(filesContaining(root, TOKEN), ['etc/nebula/worker.env']);
  assert.not.match(r.out, TOKEN);
});

test('without --host-id no HOST_ID is written: the worker uses the machine id', () => {
  const root = temp('root');
  first(root, bundle('1.0.0'));
  assert.not.ok('HOST_ID' in envOf(root));
});

test("--nats-url takes a cluster's servers, comma-separated; a list with one that is not a nats:// or tls:// URL is refused", () => {
  const root = temp('root');
  const servers = 'tls://n1.example:4222,tls://n2.example:4222,tls://n3.example:4222';
  first(root, bundle('1.0.0'), ['--nats-url', servers]);
  assert.is(envOf(root).NATS_URL, servers);
  const bad = install(
    temp('root'),
    ['--bundle', bundle('1.0.0'), '--node', NODE, '--url', 'https://nebula.example', '--nats-url', 'tls://n1.example:4222,http://n2', '--join-token-stdin'],
    `${TOKEN}\n`,
  );
  assert.is(bad.status, 1);
  assert.match(bad.out, 'not a nats:// or tls:// URL');
});

test('systemd-analyze verify passes on the installed unit, and fails on a unit whose binary is missing', () => {
  const root = temp('root');
  first(root, bundle('1.2.3'));
  const ok = verifyUnit(root);
  assert.is(ok.status, 0, `systemd-analyze verify:\n${ok.out}`);
  assert.not.match(ok.out, 'nebula-worker.service', `no complaint about the unit:\n${ok.out}`);
  // The check can fail: the same unit with its Node gone.
  rmSync(at(root, 'opt/nebula/node/bin/node'));
  const broken = verifyUnit(root);
  assert.is.not(broken.status, 0);
  assert.match(broken.out, /is not executable|No such file/);
});

test('a second run changes nothing; once joined, an upgrade switches current, keeps the env file and the credentials', () => {
  const root = temp('root');
  const v1 = bundle('1.0.0');
  first(root, v1);
  const envPath = at(root, 'etc/nebula/worker.env');
  const env1 = readFileSync(envPath, 'utf8');

  const again = installOk(root, ['--bundle', v1, '--node', NODE]);
  assert.match(again.out, 'already in');
  assert.match(again.out, 'settings unchanged');
  assert.is(readFileSync(envPath, 'utf8'), env1);
  assert.is(readlinkSync(at(root, 'opt/nebula/worker/current')), '1.0.0');

  // The worker joined (its credentials file) and the operator set a host policy by hand.
  const creds = at(root, 'var/lib/nebula/worker/credentials.json');
  writeFileSync(creds, '{"v":1,"host_id":"stand-in"}\n', { mode: 0o600 });
  writeFileSync(envPath, `${env1}WORKER_ALLOW_DEVICES=/dev/ttyUSB0\n`);

  const up = installOk(root, ['--bundle', bundle('1.1.0'), '--node', NODE]);
  assert.match(up.out, 'current: 1.0.0 -> 1.1.0');
  assert.is(readlinkSync(at(root, 'opt/nebula/worker/current')), '1.1.0');
  assert.ok(existsSync(at(root, 'opt/nebula/worker/1.0.0')), 'the previous version is kept');
  assert.is(readFileSync(creds, 'utf8'), '{"v":1,"host_id":"stand-in"}\n', 'credentials untouched');
  assert.is(mode(creds), '600');
  const env2 = envOf(root);
  assert.is(env2.WORKER_ALLOW_DEVICES, '/dev/ttyUSB0', 'a hand edit is kept');
  assert.is(env2.APP_NAME, 'web,db');
  assert.not.ok('NEBULA_JOIN_TOKEN' in env2, 'joined: the spent token is dropped');
  assert.equal(filesContaining(root, TOKEN), [], 'nowhere left');
  assert.is(mode(envPath), '600');

  // A setting given again changes where it stands; another build under the same version is kept apart.
  const same = installOk(root, ['--bundle', bundle('1.1.0', ' // rebuilt'), '--node', NODE, '--apps', 'web']);
  const current = readlinkSync(at(root, 'opt/nebula/worker/current'));
  assert.match(current, /^1\.1\.0-[0-9a-f]{12}$/, same.out);
  assert.ok(existsSync(at(root, 'opt/nebula/worker/1.1.0')), 'the previous one');
  assert.not.ok(existsSync(at(root, 'opt/nebula/worker/1.0.0')), 'older ones go');
  assert.is(envOf(root).APP_NAME, 'web');
  assert.is(envOf(root).WORKER_ALLOW_DEVICES, '/dev/ttyUSB0');
});

test('--uninstall removes the unit, the worker and Node and keeps the settings and credentials; --purge removes them too', () => {
  const root = temp('root');
  first(root, bundle('2.0.0'));
  writeFileSync(at(root, 'var/lib/nebula/worker/credentials.json'), '{}\n', { mode: 0o600 });
  const r = installOk(root, ['--uninstall']);
  assert.match(r.out, 'kept');
  for (const gone of ['etc/systemd/system/nebula-worker.service', 'opt/nebula']) assert.not.ok(existsSync(at(root, gone)), gone);
  assert.ok(existsSync(at(root, 'etc/nebula/worker.env')));
  assert.ok(existsSync(at(root, 'var/lib/nebula/worker/credentials.json')));

  // Installed again: no token needed (it has its credentials), the settings are the old ones.
  installOk(root, ['--bundle', bundle('2.0.1'), '--node', NODE]);
  assert.is(envOf(root).APP_NAME, 'web,db');

  installOk(root, ['--uninstall', '--purge']);
  for (const gone of ['etc/nebula', 'var/lib/nebula', 'opt/nebula', 'etc/systemd/system/nebula-worker.service'])
    assert.not.ok(existsSync(at(root, gone)), gone);
});

test('refuses, before changing anything: no token at first install, a malformed token (not echoed), a Node that is not 24, no bundle', () => {
  const root = temp('root');
  const b = bundle('1.0.0');
  const noToken = install(root, ['--bundle', b, '--node', NODE, '--url', 'https://nebula.example']);
  assert.is(noToken.status, 1);
  assert.match(noToken.out, 'a join token is needed');

  const secret = 'nebula-join.not-really-a-token-but-secret';
  const badToken = install(root, ['--bundle', b, '--node', NODE, '--url', 'https://nebula.example', '--join-token-stdin'], `${secret}\n`);
  assert.is(badToken.status, 1);
  assert.match(badToken.out, 'the join token is not one');
  assert.not.match(badToken.out, secret);

  const fake = join(temp('node'), 'node');
  writeFileSync(fake, '#!/bin/sh\nprintf 20\n', { mode: 0o755 });
  const oldNode = install(root, ['--bundle', b, '--node', fake, '--url', 'https://nebula.example', '--join-token-stdin'], `${TOKEN}\n`);
  assert.is(oldNode.status, 1);
  assert.match(oldNode.out, 'is not Node 24 (it says 20)');

  const noBundle = install(root, ['--bundle', temp('empty'), '--node', NODE, '--url', 'https://nebula.example', '--join-token-stdin'], `${TOKEN}\n`);
  assert.is(noBundle.status, 1);
  assert.match(noBundle.out, 'no main.js');

  const badApps = install(
    root,
    ['--bundle', b, '--node', NODE, '--url', 'https://nebula.example', '--apps', 'web,bad.name', '--join-token-stdin'],
    `${TOKEN}\n`,
  );
  assert.match(badApps.out, 'bad.name is not an app name');
  assert.equal(readdirSync(root), [], 'nothing installed');
});

test.run();
