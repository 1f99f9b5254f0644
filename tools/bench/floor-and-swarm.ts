/**
 * The two references for a real host: the floor (the same containers replaced by plain parallel
 * `docker rm -f` + `docker run`) and a Docker Swarm replicated service updated in place.
 * Each measures the time from the call until every container answers with the new env value.
 */
import { docker, publishedUrls } from './docker-cli.ts';
import { waitAllAnswer } from './http-check.ts';

const IMAGE = 'nebula/echo:1';
const LABEL = 'io.nebula.bench=true';

export async function floorSetup(count: number, basePort: number): Promise<void> {
  await floorCleanup();
  await Promise.all(Array.from({ length: count }, (_, i) => runFloor(i, basePort, '0')));
}

function runFloor(i: number, basePort: number, value: string) {
  return docker('run', '-d', '--name', `bfloor-${i + 1}`, '--label', LABEL, '--restart', 'unless-stopped', '-p', `${basePort + i}:80`, '-e', `V=${value}`, IMAGE);
}

/** One timed replacement of all containers (parallel rm -f then run), until all answer. */
export async function floorReplace(count: number, basePort: number, value: string): Promise<number> {
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${basePort + i}/`);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      await docker('rm', '-f', `bfloor-${i + 1}`);
      await runFloor(i, basePort, value);
    }),
  );
  await waitAllAnswer(async () => urls, count, 'V', value);
  return performance.now() - t0;
}

export async function floorCleanup(): Promise<void> {
  const ids = await docker('ps', '-aq', '--filter', `label=${LABEL}`);
  if (ids) await docker('rm', '-f', ...ids.split('\n'));
}

export async function swarmSetup(count: number): Promise<void> {
  const state = await docker('info', '--format', '{{.Swarm.LocalNodeState}}');
  if (state !== 'active') await docker('swarm', 'init', '--advertise-addr', '127.0.0.1');
  await docker('service', 'rm', 'nebula-bench').catch(() => '');
  await waitGone();
  await docker(
    'service', 'create', '--detach', '--name', 'nebula-bench', '--replicas', String(count),
    '--publish', 'mode=host,target=80', '--env', 'V=0', '--stop-grace-period', '10s', IMAGE,
  );
  await waitAllAnswer(() => publishedUrls('label=com.docker.swarm.service.name=nebula-bench'), count, 'V', '0');
}

async function waitGone() {
  for (let i = 0; i < 200; i++) {
    if ((await docker('ps', '-aq', '--filter', 'label=com.docker.swarm.service.name=nebula-bench')) === '') return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One timed `docker service update` of the env var with the given parallelism. */
export async function swarmUpdate(count: number, parallelism: number, value: string): Promise<number> {
  const t0 = performance.now();
  await docker(
    'service', 'update', '--detach', '--env-add', `V=${value}`, '--update-parallelism', String(parallelism),
    '--update-delay', '0s', '--update-monitor', '0s', '--update-order', 'stop-first', 'nebula-bench',
  );
  await waitAllAnswer(() => publishedUrls('label=com.docker.swarm.service.name=nebula-bench'), count, 'V', value);
  return performance.now() - t0;
}

export async function swarmCleanup(): Promise<void> {
  await docker('service', 'rm', 'nebula-bench').catch(() => '');
  await waitGone();
  await docker('swarm', 'leave', '--force').catch(() => '');
}
