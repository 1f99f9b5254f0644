/**
 * nebula/node-base:24, the base the release images build on where the official `node:24-slim`
 * cannot be pulled: made from this machine's files, as tools/images/build.sh makes the test images
 * (a rootfs piped to `docker import`), and rebuilt only when one of them changed (label
 * nebula.build-hash). What the Dockerfiles need of a base, and node:24-slim has too:
 *
 *   /usr/local/bin/node   the Node 24 running this script (the repo's .toolchain/ one; stripped of
 *                         its debug symbols when `strip` is there) and the libraries `ldd` lists
 *   /etc/ssl/certs        the CA bundle (ca-certificates.crt)
 *   /etc/passwd, group    root, node (1000, as in the official image), nebula (10001: the USER of
 *                         the api, notifier and cli images), nobody
 *   /bin/sh ...           busybox-static, for `docker exec` and RUN lines
 *   /tmp                  mode 1777
 *
 * It has no /etc/machine-id: a worker's host id comes from the host's (mounted) or from HOST_ID.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { exec, tryExec } from './exec.ts';
import { HASH_LABEL, hashOf, LOCAL_BASE } from './plan.ts';

const BUSYBOX = '/bin/busybox';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'node:x:1000:1000::/home/node:/bin/sh',
  'nebula:x:10001:10001:nebula:/nonexistent:/sbin/nologin',
  'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin',
];
const GROUP = ['root:x:0:', 'node:x:1000:', 'nebula:x:10001:', 'nogroup:x:65534:'];

/** The shared libraries a binary links to, as `ldd` lists them (absolute paths). */
export function lddPaths(lddOutput: string): string[] {
  const paths = new Set<string>();
  for (const line of lddOutput.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) paths.add(m[1]);
  }
  return [...paths].sort();
}

function hasStrip(): boolean {
  try {
    execFileSync('strip', ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

function put(root: string, from: string, to = from): void {
  mkdirSync(dirname(join(root, to)), { recursive: true });
  copyFileSync(realpathSync(from), join(root, to));
}

export interface BaseImage {
  ref: string;
  id: string;
  built: boolean;
}

export async function imageLabel(ref: string, label: string): Promise<string | null> {
  const out = await tryExec('docker', ['image', 'inspect', '-f', `{{ index .Config.Labels "${label}" }}`, ref], { timeoutMs: 30_000 });
  return out === null ? null : out.trim();
}

export async function imageId(ref: string): Promise<string | null> {
  const out = await tryExec('docker', ['image', 'inspect', '-f', '{{.Id}}', ref], { timeoutMs: 30_000 });
  return out === null ? null : out.trim();
}

/** Makes (or reuses) the local base image from the Node binary running this script. */
export async function ensureLocalBase(): Promise<BaseImage> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major !== 24)
    throw new Error(`the local base image takes the Node running this script, which is ${process.version}: run it with Node 24 (bash tools/node.sh ...)`);
  const node = realpathSync(process.execPath);
  for (const f of [BUSYBOX, CA_BUNDLE]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: apt-get install -y --no-install-recommends busybox-static ca-certificates`);
  }
  const libs = lddPaths(execFileSync('ldd', [node], { encoding: 'utf8', timeout: 30_000 }));
  const strip = hasStrip();
  const hash = hashOf([
    readFileSync(import.meta.filename),
    process.version,
    readFileSync(node),
    `strip=${strip}`,
    readFileSync(BUSYBOX),
    readFileSync(CA_BUNDLE),
    ...libs.flatMap((l) => [l, readFileSync(l)]),
  ]);
  if ((await imageLabel(LOCAL_BASE, HASH_LABEL)) === hash) {
    const id = await imageId(LOCAL_BASE);
    if (id) return { ref: LOCAL_BASE, id, built: false };
  }
  const root = mkdtempSync(join(tmpdir(), 'nebula-node-base-'));
  try {
    put(root, node, '/usr/local/bin/node');
    if (strip) execFileSync('strip', ['--strip-all', join(root, 'usr/local/bin/node')], { timeout: 120_000 });
    chmodSync(join(root, 'usr/local/bin/node'), 0o755);
    for (const lib of libs) put(root, lib);
    put(root, BUSYBOX, '/bin/busybox');
    chmodSync(join(root, 'bin/busybox'), 0o755);
    const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8', timeout: 10_000 }).split('\n').filter(Boolean);
    for (const applet of applets) if (!existsSync(join(root, 'bin', applet))) symlinkSync('busybox', join(root, 'bin', applet));
    put(root, CA_BUNDLE);
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/passwd'), `${PASSWD.join('\n')}\n`);
    writeFileSync(join(root, 'etc/group'), `${GROUP.join('\n')}\n`);
    writeFileSync(join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
    for (const d of ['tmp', 'root', 'home/node', 'proc', 'sys', 'dev', 'usr/bin', 'usr/sbin', 'sbin']) mkdirSync(join(root, d), { recursive: true });
    chmodSync(join(root, 'tmp'), 0o1777);
    execFileSync('chown', ['1000:1000', join(root, 'home/node')], { timeout: 10_000 });
    const changes = [
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      `ENV NODE_VERSION=${process.versions.node}`,
      `LABEL ${HASH_LABEL}=${hash}`,
      'LABEL org.opencontainers.image.title=nebula-node-base',
      `LABEL org.opencontainers.image.description="Node.js ${process.version} from this machine, for building the Nebula images where node:24-slim cannot be pulled"`,
      `LABEL org.opencontainers.image.version=${process.versions.node}`,
      'CMD ["node"]',
    ];
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await exec('docker', ['import', ...changes.flatMap((c) => ['--change', c]), '-', LOCAL_BASE], { timeoutMs: 300_000, stdin: tar.stdout });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const id = await imageId(LOCAL_BASE);
  if (!id) throw new Error(`${LOCAL_BASE} was imported but cannot be inspected`);
  return { ref: LOCAL_BASE, id, built: true };
}
