import { spawnSync } from 'node:child_process';
import { type CronJobConfigInput, type CronRunReport, cronJobConfigSchema, cronRunReportSchema, type GroupCronJob } from '@nebula/contracts';
import { waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CronScheduler, createCronScheduler } from '../src/cron/cron-scheduler.ts';
import { DEFAULT_HOST_POLICY } from '../src/planner/host-policy.ts';
import { noteImage, type SeenImage } from '../src/planner/image-gc.ts';
import { pruneHostImages } from '../src/prune.ts';
import { type ContainerRuntime, LABELS } from '../src/runtime/container-runtime.ts';
import { DockerRuntime } from '../src/runtime/docker-runtime.ts';
import { containersOf, docker, dockerCli, ECHO, REGISTRY, removeHostContainers } from './docker-helpers.ts';
import { log, suffix } from './helpers.ts';

/** Cron runs and prunes against the real Docker engine; images built here and pushed to the local registry, nothing from the internet. */

const runtime = new DockerRuntime(docker, { callTimeoutMs: 10_000, pullStallMs: 20_000 });
const hosts: string[] = [];
const images: string[] = [];
const schedulers: CronScheduler[] = [];

/** Builds a one-off image on the echo image; returns its id. */
function build(ref: string, dockerfile: string): string {
  const built = spawnSync('docker', ['build', '-q', '-t', ref, '-'], { input: `FROM ${ECHO}\n${dockerfile}\n`, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`docker build ${ref}: ${built.stderr}`);
  images.push(ref);
  return built.stdout.trim();
}

function scheduler(host: string, reports: CronRunReport[]): CronScheduler {
  const s = createCronScheduler({
    hostId: host,
    runtime,
    log,
    hostPolicy: DEFAULT_HOST_POLICY,
    report: async (r) => {
      reports.push(cronRunReportSchema.parse(r));
    },
    pollMs: 200,
    stopTimeoutSeconds: 1,
  });
  schedulers.push(s);
  return s;
}

const job = (name: string, over: Partial<CronJobConfigInput>): GroupCronJob => ({
  name,
  cron_job_id: 1,
  config: cronJobConfigSchema.parse({ schedule: '* * * * * *', networks: ['bridge'], ...over }),
});

test.after(async () => {
  for (const s of schedulers) await s.stop();
  for (const h of hosts) await removeHostContainers(h);
  for (const i of images) await dockerCli('rmi', '-f', i).catch(() => undefined);
});

test('a run of an image that prints a line and exits 3: reported with exit 3 and the line; no restart policy, no app label', async () => {
  const host = `cron-${suffix()}`;
  hosts.push(host);
  const ref = `${REGISTRY}/nebula/cron-exit3:${suffix()}`;
  build(ref, `ENTRYPOINT ["sh", "-c", "echo cron says hello; echo and to stderr >&2; exit 3"]`);
  await dockerCli('push', ref);
  const reports: CronRunReport[] = [];
  const s = scheduler(host, reports);
  s.update('g', [job('hello', { docker_image: ref })]);
  const rep = await waitFor('a run reported', async () => reports[0], 30_000, 100);
  s.update('g', []);
  assert.equal([rep.exit_code, rep.timed_out, rep.error], [3, false, null]);
  assert.match(rep.log_tail, /cron says hello\n/);
  assert.match(rep.log_tail, /and to stderr\n/);
  assert.match(rep.container, /^hello-\d{10}$/);
  const info = await docker.getContainer(rep.container).inspect();
  assert.equal(info.HostConfig.RestartPolicy?.Name, 'no');
  assert.equal(info.Config.Labels[LABELS.cronJob], 'hello');
  assert.equal(info.Config.Labels[LABELS.app], undefined);
  await s.stop();
});

test('a run that sleeps past its timeout is stopped and reported timed_out', async () => {
  const host = `cron-${suffix()}`;
  hosts.push(host);
  const ref = `${REGISTRY}/nebula/cron-sleep:${suffix()}`;
  build(ref, `ENTRYPOINT ["sh", "-c", "echo going to sleep; exec sleep 300"]`);
  await dockerCli('push', ref);
  const reports: CronRunReport[] = [];
  const s = scheduler(host, reports);
  s.update('g', [job('sleepy', { docker_image: ref, timeout_seconds: 1 })]);
  const rep = await waitFor('the run reported', async () => reports[0], 60_000, 100);
  s.update('g', []);
  assert.equal(rep.timed_out, true);
  assert.equal(rep.error, null);
  assert.ok(rep.exit_code !== null && rep.exit_code !== 0, `stopped by a signal: ${rep.exit_code}`);
  assert.match(rep.log_tail, /going to sleep/);
  const c = (await containersOf(host)).get(rep.container);
  assert.equal(c?.State, 'exited');
  await s.stop();
});

test('prune: removes an unused image and reports its size; keeps one a container uses and the current and previous image of an app', async () => {
  const host = `prune-${suffix()}`;
  hosts.push(host);
  const tag = suffix();
  const repo = `nebula/prune-test-${tag}`;
  const unused = build(`${repo}-unused:1`, `RUN echo unused-${tag} > /u`);
  const used = build(`${repo}-used:1`, `RUN echo used-${tag} > /u`);
  const app = [0, 1, 2].map((v) => build(`${repo}-app:${v}`, `RUN echo app-${v}-${tag} > /v`));
  const mine = new Set([unused, used, ...app]);
  // Not theirs to remove: this test's view of the engine holds only its own images (the machine's others stay).
  const scoped: ContainerRuntime = Object.assign(Object.create(runtime) as DockerRuntime, {
    listImages: async (opts?: Parameters<ContainerRuntime['listImages']>[0]) => (await runtime.listImages(opts)).filter((i) => mine.has(i.id)),
  });
  await dockerCli('create', '--name', `prune-user-${tag}`, '--label', `${LABELS.host}=${host}`, '--label', `${LABELS.owner}=nebula`, `${repo}-used:1`);
  const history = app.reduce<SeenImage[]>((h, id, v) => noteImage(h, { id, ref: `${repo}-app:${v}` }), []);
  const sizes = new Map((await runtime.listImages()).map((i) => [i.id, i.size]));
  const out = await pruneHostImages(scoped, { apps: [history], protect: [] }, { callTimeoutMs: 10_000 });
  assert.equal(out.images_removed.sort(), [unused, app[0] as string].sort());
  assert.equal(out.bytes_freed, (sizes.get(unused) ?? 0) + (sizes.get(app[0] as string) ?? 0));
  assert.ok(out.bytes_freed > 0);
  const left = new Set((await runtime.listImages()).map((i) => i.id));
  assert.not.ok(left.has(unused));
  assert.not.ok(left.has(app[0] as string));
  for (const id of [used, app[1], app[2]]) assert.ok(left.has(id as string), `${id} kept`);
  await dockerCli('rm', '-f', `prune-user-${tag}`);
});

test.run();
