/**
 * The two references for a real host: the floor (the same containers replaced by plain parallel
 * `docker rm -f` + `docker run`) and a Docker Swarm replicated service updated in place.
 * Each measures the time from the call until every container answers with the new env value.
 *
 * Every container made here carries `io.nebula.bench=true` (cleanup) and `io.nebula.bench.side`
 * (floor or swarm), so that one side's cleanup never touches another side's containers.
 */
import { docker, publishedUrls } from './docker-cli.ts';
import { waitAllAnswer } from './http-check.ts';

export const BENCH_LABEL = 'io.nebula.bench=true';
const FLOOR_LABEL = 'io.nebula.bench.side=floor';
const SERVICE = 'nebula-bench';
const SWARM_FILTER = `label=com.docker.swarm.service.name=${SERVICE}`;

export async function floorSetup(image: string, count: number, basePort: number): Promise<void> {
  await floorCleanup();
  await Promise.all(Array.from({ length: count }, (_, i) => runFloor(image, i, basePort, '0')));
  await waitAllAnswer(async () => floorUrls(count, basePort), count, 'V', '0', 120_000, true);
}

const floorUrls = (count: number, basePort: number) => Array.from({ length: count }, (_, i) => `http://127.0.0.1:${basePort + i}/`);

function runFloor(image: string, i: number, basePort: number, value: string) {
  return docker(
    'run',
    '-d',
    '--name',
    `nebula-bench-floor-${i + 1}`,
    '--label',
    BENCH_LABEL,
    '--label',
    FLOOR_LABEL,
    '--restart',
    'unless-stopped',
    '-p',
    `127.0.0.1:${basePort + i}:80`,
    '-e',
    `V=${value}`,
    image,
  );
}

/** One timed replacement of all containers (parallel rm -f then run), until all answer. */
export async function floorReplace(image: string, count: number, basePort: number, value: string): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      await docker('rm', '-f', `nebula-bench-floor-${i + 1}`);
      await runFloor(image, i, basePort, value);
    }),
  );
  await waitAllAnswer(async () => floorUrls(count, basePort), count, 'V', value, 120_000, true);
  return performance.now() - t0;
}

export async function floorCleanup(): Promise<void> {
  const ids = await docker('ps', '-aq', '--filter', `label=${FLOOR_LABEL}`);
  if (ids) await docker('rm', '-f', ...ids.split('\n'));
}

/**
 * Removes every container a benchmark side made: the labelled ones, and Nebula's, which carry the
 * host id of the bench's worker (`io.nebula.*` labels are reserved for Nebula itself).
 */
export async function benchContainersCleanup(nebulaHostIds: string[] = []): Promise<void> {
  for (const filter of [`label=${BENCH_LABEL}`, ...nebulaHostIds.map((h) => `label=io.nebula.host=${h}`)]) {
    const ids = await docker('ps', '-aq', '--filter', filter);
    if (ids) await docker('rm', '-f', ...ids.split('\n'));
  }
}

let swarmInitHere = false;

export async function swarmSetup(image: string, count: number, stopGraceSeconds: number): Promise<void> {
  const state = await docker('info', '--format', '{{.Swarm.LocalNodeState}}');
  if (state !== 'active') {
    await docker('swarm', 'init', '--advertise-addr', '127.0.0.1');
    swarmInitHere = true;
  }
  await docker('service', 'rm', SERVICE).catch(() => '');
  await waitGone();
  await docker(
    'service',
    'create',
    '--detach',
    '--name',
    SERVICE,
    '--replicas',
    String(count),
    '--container-label',
    BENCH_LABEL,
    '--publish',
    'mode=host,target=80',
    '--env',
    'V=0',
    '--stop-grace-period',
    `${stopGraceSeconds}s`,
    image,
  );
  await waitAllAnswer(() => publishedUrls(SWARM_FILTER), count, 'V', '0');
}

async function waitGone() {
  for (let i = 0; i < 300; i++) {
    if ((await docker('ps', '-aq', '--filter', SWARM_FILTER)) === '') return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One timed `docker service update` of the env var with the given parallelism. */
export async function swarmUpdate(count: number, parallelism: number, value: string): Promise<number> {
  const t0 = performance.now();
  await docker(
    'service',
    'update',
    '--detach',
    '--env-add',
    `V=${value}`,
    '--update-parallelism',
    String(parallelism),
    '--update-delay',
    '0s',
    '--update-monitor',
    '0s',
    '--update-order',
    'stop-first',
    SERVICE,
  );
  await waitAllAnswer(() => publishedUrls(SWARM_FILTER), count, 'V', value);
  return performance.now() - t0;
}

/** Removes the service, and leaves swarm mode if this process turned it on. */
export async function swarmCleanup(): Promise<void> {
  await docker('service', 'rm', SERVICE).catch(() => '');
  await waitGone();
  if (swarmInitHere) {
    await docker('swarm', 'leave', '--force').catch(() => '');
    swarmInitHere = false;
  }
}
