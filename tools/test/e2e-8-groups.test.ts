import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Harness, harnessPerFile } from '../src/e2e/harness.ts';
import { containersOn, onHosts, waitConverged } from '../src/e2e/observe.ts';
import { Report } from '../src/e2e/report.ts';
import { buildImage, ECHO, pushAs, rolloutIdOf, waitApplied } from '../src/e2e/steps.ts';

/**
 * Device groups on two hosts, each its own engine, whose workers start with DEVICE_GROUP=edge and no
 * APP_NAME: the group is created after them (they wait for it); an app added to the group runs on
 * both and one removed goes, without a worker restart; a host offline during a group change catches
 * up; a cron job with a seconds schedule runs on both and its runs are listed; a prune frees an
 * unused image on each host; reports filtered by the group.
 */
const test = suite('e2e device groups');
const report = new Report('tools/test/e2e-8-groups.test.ts');
const GROUP = 'edge';
let h: Harness;
let all: string[] = [];
let TICK = '';
let UNUSED = '';

harnessPerFile(
  test,
  report,
  'e2e groups',
  { hosts: 2, apps: () => [], images: [ECHO], workerEnv: { DEVICE_GROUP: GROUP, WORKER_REPORT_INTERVAL_SECONDS: '2' } },
  async (started) => {
    h = started;
    all = h.hosts.map((x) => x.name);
    TICK = `127.0.0.1:5000/nebula/e2e-${h.runId}:tick`;
    await buildImage(TICK, `FROM ${ECHO}\nENTRYPOINT ["/bin/sh", "-c", "echo tick on $(hostname); exit 3"]\n`);
    await pushAs(TICK, TICK);
    UNUSED = `127.0.0.1:5000/nebula/e2e-${h.runId}:unused`;
    await buildImage(UNUSED, `FROM ${ECHO}\nLABEL unused=yes\nRUN head -c 3000000 /dev/urandom > /ballast\n`);
    await pushAs(UNUSED, UNUSED);
  },
);

interface GroupDoc {
  device_group: string;
  device_group_id: number;
  prune_id: number;
  apps: string[];
  cron_jobs: string[];
  rollout_id?: string;
}

async function createApp(app: string, port: number): Promise<void> {
  await h.rest.expect(200, 'POST', `/api/v2/apps/${app}`, {
    body: { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], containers_per: { server: 1 }, env_vars: { APP: app } },
  });
}

const workerPids = () => h.workers.map((w) => w.pid);

report.case(
  test,
  'scenario',
  'an app added to a device group runs on its hosts, one removed goes, no worker restart',
  'both workers started before the group existed (waiting, not crashed); the group is created with app g-one: it runs on both hosts and the group rollout reports both applied; g-two added and g-one removed by an update: g-two runs on both, g-one is gone from both engines; the worker processes are the same throughout; deleting an app the group names is refused',
  async (r) => {
    const pids = workerPids();
    await createApp('g-one', 8700);
    await createApp('g-two', 8710);
    const t = Date.now();
    const created = await h.rest.expect<GroupDoc>(200, 'POST', `/api/v2/device_groups/${GROUP}`, { body: { apps: ['g-one'] } });
    assert.is(created.device_group_id, 1);
    await waitConverged(h.hosts, 'g-one', onHosts(h.hosts, all, { count: 1, ports: [8700] }), { since: t, timeoutMs: 60_000 });
    r.converged('app of a new group running on both hosts', Date.now() - t);
    await waitApplied(h, rolloutIdOf(created), all, 60_000);

    const t2 = Date.now();
    const updated = await h.rest.expect<GroupDoc>(202, 'PATCH', `/api/v2/device_groups/${GROUP}/update`, { body: { apps: ['g-two'] } });
    assert.is(updated.device_group_id, 2, 'device_group_id counts changes');
    await waitConverged(h.hosts, 'g-two', onHosts(h.hosts, all, { count: 1, ports: [8710] }), { since: t2, timeoutMs: 60_000 });
    await waitConverged(h.hosts, 'g-one', onHosts(h.hosts, all, { count: 0 }), { timeoutMs: 60_000 });
    r.converged('app swapped in the group on both hosts', Date.now() - t2);
    await waitApplied(h, rolloutIdOf(updated), all, 60_000);
    assert.equal(workerPids(), pids, 'no worker restarted');

    const refused = await h.rest.call('DELETE', '/api/v2/apps/g-two');
    assert.is(refused.status, 409, JSON.stringify(refused.body));
    assert.equal((refused.body as { device_groups?: string[] }).device_groups, [GROUP]);
    for (const x of h.hosts) assert.is((await containersOn(x, 'g-two')).length, 1, `g-two still on ${x.name}`);
  },
);

report.case(
  test,
  'fault',
  'a host offline during a group change converges to the group when it comes back',
  'host-2 is stopped; g-three is added to the group: the change expects only the online host and completes there; host-2 started again runs g-three (and still g-two)',
  async (r) => {
    await createApp('g-three', 8720);
    const [, second] = h.hosts;
    await h.worker(second!.name).stop();
    await waitFor(`${second!.name} offline`, async () => (await hostStatus(second!.name)) === 'offline', 30_000, 200);
    const updated = await h.rest.expect<GroupDoc>(202, 'PATCH', `/api/v2/device_groups/${GROUP}/update`, { body: { apps: ['g-two', 'g-three'] } });
    const p = await waitApplied(h, rolloutIdOf(updated), [all[0]!], 60_000);
    assert.is(p.failed, 0, 'the offline host is not a failure');
    const t = Date.now();
    await h.worker(second!.name).start();
    await waitConverged([second!], 'g-three', onHosts([second!], [second!.name], { count: 1, ports: [8720] }), { timeoutMs: 60_000 });
    r.converged('offline host caught up with the group', Date.now() - t);
    assert.is((await containersOn(second!, 'g-two')).length, 1, 'and still runs g-two');
  },
);

interface Run {
  host_id: string;
  started_at: string;
  finished_at: string | null;
  exit_code: number | null;
  timed_out: boolean;
  log_tail: string | null;
}

report.case(
  test,
  'scenario',
  'a cron job of the group runs on both hosts, and its runs are listed',
  'cron job tick (schedule every 2 s, an image that prints a line and exits 3) added to the group: each host runs it in containers named tick-<unix time> labelled ours; GET /api/v2/cron_jobs/tick/runs and nebula cron runs tick list runs of both hosts with exit code 3 and the printed line; never two runs of the job at once on a host',
  async (r) => {
    await h.rest.expect(200, 'POST', '/api/v2/cron_jobs/tick', { body: { docker_image: TICK, schedule: '*/2 * * * * *', timeout_seconds: 30 } });
    const t = Date.now();
    await h.rest.expect<GroupDoc>(202, 'PATCH', `/api/v2/device_groups/${GROUP}/update`, { body: { cron_jobs: ['tick'] } });
    let runs: Run[] = [];
    await waitFor(
      'two finished runs of tick on each host',
      async () => {
        runs = (await h.rest.expect<{ runs: Run[] }>(200, 'GET', '/api/v2/cron_jobs/tick/runs')).runs;
        return all.every((n) => runs.filter((x) => x.host_id === n && x.finished_at !== null).length >= 2);
      },
      90_000,
      500,
    );
    r.converged('cron job ran twice on both hosts', Date.now() - t);
    for (const run of runs.filter((x) => x.finished_at !== null)) {
      assert.is(run.exit_code, 3, JSON.stringify(run));
      assert.is(run.timed_out, false);
      assert.match(run.log_tail ?? '', /tick on /);
    }
    for (const x of h.hosts) {
      const names = (await x.docker('ps', '-a', '--filter', 'label=io.nebula.cron-job=tick', '--format', '{{.Names}}')).split('\n').filter(Boolean);
      assert.ok(names.length >= 1, `run containers on ${x.name}`);
      for (const n of names) assert.match(n, /^tick-\d{10}$/);
      const running = (await x.docker('ps', '--filter', 'label=io.nebula.cron-job=tick', '--format', '{{.Names}}')).split('\n').filter(Boolean);
      assert.ok(running.length <= 1, `at most one run at a time on ${x.name}: ${running.join(', ')}`);
    }
    const cli = await h.cli(['cron', 'runs', 'tick']);
    assert.is(cli.code, 0, cli.stderr);
    for (const n of all) assert.match(cli.stdout, new RegExp(n));
    await h.rest.expect<GroupDoc>(202, 'PATCH', `/api/v2/device_groups/${GROUP}/update`, { body: { cron_jobs: [] } });
  },
);

interface Prunes {
  prunes: Array<{ host: string; prune_id: number; bytes_freed: number; images_removed: string[]; error: string | null }>;
}

report.case(
  test,
  'scenario',
  'a prune of the group frees an unused image on each host',
  'each host pulls an image no container uses; POST /api/v2/device_groups/edge/prune bumps prune_id; each host removes it, keeps the images its apps run, and reports the bytes it freed (GET /api/v2/prunes)',
  async (r) => {
    for (const x of h.hosts) await x.docker('pull', UNUSED);
    const t = Date.now();
    const pruned = await h.rest.expect<GroupDoc>(202, 'POST', `/api/v2/device_groups/${GROUP}/prune`);
    let got: Prunes['prunes'] = [];
    await waitFor(
      'a prune report from each host',
      async () => {
        got = (await h.rest.expect<Prunes>(200, 'GET', `/api/v2/prunes?device_group=${GROUP}&prune_id=${pruned.prune_id}`)).prunes;
        return all.every((n) => got.some((p) => p.host === n));
      },
      60_000,
      500,
    );
    r.converged('prune reported by both hosts', Date.now() - t);
    for (const p of got) {
      assert.is(p.error, null, JSON.stringify(p));
      assert.ok(p.bytes_freed >= 3_000_000, `${p.host} freed ${p.bytes_freed} bytes`);
    }
    for (const x of h.hosts) {
      const images = await x.docker('images', '--format', '{{.Repository}}:{{.Tag}}');
      assert.not.match(images, new RegExp(`e2e-${h.runId}:unused`), `the unused image is gone from ${x.name}`);
      assert.match(images, /nebula\/echo:1/, `the image the apps run stays on ${x.name}`);
      assert.is((await containersOn(x, 'g-two')).filter((c) => c.state === 'running').length, 1, `g-two still runs on ${x.name}`);
    }
  },
);

report.case(
  test,
  'scenario',
  'reports of the group, paged and filtered',
  "GET /api/v2/reports?device_group=edge returns reports of both hosts, each saying the group, paged by last_id; another group name gives the original's empty page (data and last_id null)",
  async () => {
    await waitFor(
      'reports of both hosts in the group',
      async () => {
        const page = await h.rest.expect<{ data: Array<{ hostname: string; device_group: string }> }>(
          200,
          'GET',
          `/api/v2/reports?device_group=${GROUP}&page_size=100`,
        );
        return all.every((n) => page.data.some((x) => x.hostname === n));
      },
      30_000,
      500,
    );
    const first = await h.rest.expect<{ data: Array<{ device_group: string }>; last_id: { $oid: string } | null }>(
      200,
      'GET',
      `/api/v2/reports?device_group=${GROUP}&page_size=1`,
    );
    assert.is(first.data.length, 1);
    assert.is(first.data[0]?.device_group, GROUP);
    const next = await h.rest.expect<{ data: unknown[] }>(200, 'GET', `/api/v2/reports?device_group=${GROUP}&page_size=1&last_id=${first.last_id?.$oid}`);
    assert.is(next.data.length, 1, 'a second page');
    // The original's empty page: data and last_id null.
    const none = await h.rest.expect<{ data: unknown[] | null; last_id: unknown }>(200, 'GET', '/api/v2/reports?device_group=elsewhere');
    assert.equal(none, { data: null, last_id: null });
  },
);

async function hostStatus(host: string): Promise<string | undefined> {
  const body = await h.rest.expect<{ hosts: Array<{ id: string; status: string }> }>(200, 'GET', '/api/v2/hosts');
  return body.hosts.find((x) => x.id === host)?.status;
}

test.run();
