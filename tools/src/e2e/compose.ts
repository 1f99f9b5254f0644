/**
 * deploy/compose.yaml for an end-to-end run, as an operator runs it: the release images
 * (`npm run release`, which rebuilds only what changed), a Compose v2 project of the run's own
 * (`bash tools/compose.sh`, Compose 2.26 from Debian 13 where the machine has none), its settings
 * in an env file of the run, torn down by its project name.
 *
 *   ensureReleaseImages() ─▶ composeProject(name, envFile).up() ─▶ ... ─▶ down()   (containers, network, volumes)
 *   removeStaleProjects()   projects of runs whose test process is gone (a kill -9), by their labels
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { processAlive, REPO_ROOT } from './processes.ts';

const exec = promisify(execFile);

export const COMPOSE_FILE = join(REPO_ROOT, 'deploy', 'compose.yaml');
/** Projects of e2e runs: `nebula-e2e-compose-<run id>`, the run id ending in `p<pid>` of the test. */
export const PROJECT_PREFIX = 'nebula-e2e-compose-';
/**
 * The images the compose file and the hosts run: as `npm run release` tags them, or others named
 * by the compose file's settings in the environment (which Compose takes over its env file), e.g.
 * NEBULA_API_IMAGE=... to try a build of one's own.
 */
export const releaseImages = () => ({
  api: process.env.NEBULA_API_IMAGE || 'nebula/api:latest',
  notifier: process.env.NEBULA_NOTIFIER_IMAGE || 'nebula/notifier:latest',
  worker: process.env.NEBULA_WORKER_IMAGE || 'nebula/worker:latest',
});
const PROJECT_LABEL = 'com.docker.compose.project';

async function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  try {
    return await exec(cmd, args, { cwd: REPO_ROOT, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, ...(env ? { env } : {}) });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string; killed?: boolean };
    const why = e.killed ? `timed out after ${timeoutMs} ms` : e.message.split('\n')[0];
    throw new Error(`${cmd} ${args.join(' ')}: ${why}\n${(e.stderr ?? '').slice(-2000)}`, { cause: err });
  }
}

/**
 * The release images: built (or found up to date) by `npm run -s release` where the repository has
 * the release build (tools/src/release/), else those on the machine. Its output goes to `logFile`.
 * Returns what was done, for the run's log.
 */
export async function ensureReleaseImages(logFile: string): Promise<string> {
  let done = 'the release images on the machine (this checkout has no tools/src/release/)';
  if (existsSync(join(REPO_ROOT, 'tools', 'src', 'release'))) {
    const t0 = Date.now();
    const out = await run('npm', ['run', '-s', 'release'], 10 * 60_000);
    writeFileSync(logFile, `${out.stdout}\n${out.stderr}`);
    done = `npm run -s release (${((Date.now() - t0) / 1000).toFixed(1)} s)`;
  }
  for (const image of Object.values(releaseImages())) {
    await run('docker', ['image', 'inspect', '--format', '{{.Id}}', image], 30_000).catch((err) => {
      throw new Error(`${image} is not on this machine: build the release images (npm run release)`, { cause: err });
    });
  }
  return done;
}

export interface ComposeProject {
  name: string;
  /** `docker compose -p NAME -f deploy/compose.yaml --env-file ENV ARGS...` */
  compose(args: string[], timeoutMs?: number): Promise<string>;
  /** `up -d --wait`: every service running, the ones with a health check healthy. */
  up(timeoutMs?: number): Promise<void>;
  /** The logs of every service, one file each (`compose-<service>.log`) in `dir`. */
  saveLogs(dir: string): Promise<void>;
  /** `down -v`: containers, network and volumes; never throws. */
  down(): Promise<void>;
}

export function composeProject(name: string, envFile: string): ComposeProject {
  const compose = async (args: string[], timeoutMs = 120_000) =>
    (await run('bash', [join(REPO_ROOT, 'tools', 'compose.sh'), '-p', name, '-f', COMPOSE_FILE, '--env-file', envFile, ...args], timeoutMs)).stdout;
  return {
    name,
    compose,
    async up(timeoutMs = 180_000) {
      await compose(['up', '-d', '--wait', '--quiet-pull'], timeoutMs);
    },
    async saveLogs(dir) {
      const services = (await compose(['config', '--services'], 30_000)).split('\n').filter(Boolean);
      await Promise.all(
        services.map(async (s) => {
          const text = await compose(['logs', '--no-color', '--no-log-prefix', s], 30_000).catch((err) => `(no logs: ${err})`);
          writeFileSync(join(dir, `compose-${s}.log`), text);
        }),
      );
    },
    async down() {
      await compose(['down', '-v', '--remove-orphans', '-t', '2'], 120_000).catch(() => removeProject(name));
    },
  };
}

/** Everything of a project, found by Compose's labels (without its compose file). */
async function removeProject(name: string): Promise<void> {
  const label = `label=${PROJECT_LABEL}=${name}`;
  const ids = async (...args: string[]) => (await run('docker', args, 30_000).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
  const containers = await ids('ps', '-aq', '--filter', label);
  if (containers.length > 0) await run('docker', ['rm', '-f', '-v', ...containers], 60_000).catch(() => undefined);
  const networks = await ids('network', 'ls', '-q', '--filter', label);
  if (networks.length > 0) await run('docker', ['network', 'rm', ...networks], 30_000).catch(() => undefined);
  const volumes = await ids('volume', 'ls', '-q', '--filter', label);
  if (volumes.length > 0) await run('docker', ['volume', 'rm', '-f', ...volumes], 30_000).catch(() => undefined);
}

/** The test process of a project or run folder name (`...p<pid>`); null for another name. */
export function ownerPid(name: string, prefix: string): number | null {
  if (!name.startsWith(prefix)) return null;
  const m = /p(\d+)$/.exec(name.slice(prefix.length));
  return m ? Number(m[1]) : null;
}

/**
 * A run folder once its run is over: only its logs stay (the bus keys, the TLS keys, the env file
 * with its passwords and the rest go).
 */
export function scrubRunDir(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) if (!entry.endsWith('.log')) rmSync(join(dir, entry), { recursive: true, force: true });
}

/**
 * Projects (containers, networks, volumes) of e2e runs whose test process is gone, and the secrets
 * in their run folders under `runsDir` (`compose-<run id>`); of those folders, only the last `keep`
 * stay (their logs).
 */
export async function removeStaleProjects(runsDir: string, keep = 4): Promise<void> {
  const names = new Set<string>();
  for (const kind of [
    ['ps', '-a'],
    ['network', 'ls'],
    ['volume', 'ls'],
  ]) {
    const { stdout } = await run('docker', [...kind, '--filter', `label=${PROJECT_LABEL}`, '--format', `{{.Label "${PROJECT_LABEL}"}}`], 30_000);
    for (const n of stdout.split('\n')) if (n.startsWith(PROJECT_PREFIX)) names.add(n);
  }
  for (const name of names) {
    const pid = ownerPid(name, PROJECT_PREFIX);
    if (pid !== null && !processAlive(pid)) await removeProject(name);
  }
  if (!existsSync(runsDir)) return;
  const dead = readdirSync(runsDir).filter((entry) => {
    const pid = ownerPid(entry, 'compose-');
    return pid !== null && !processAlive(pid);
  });
  for (const entry of dead) scrubRunDir(join(runsDir, entry));
  const byAge = dead.map((entry) => ({ entry, mtime: statSync(join(runsDir, entry)).mtimeMs })).sort((a, b) => a.mtime - b.mtime);
  for (const { entry } of byAge.slice(0, Math.max(0, byAge.length - keep))) rmSync(join(runsDir, entry), { recursive: true, force: true });
}
