import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { SKEWED_CLOCK_PRELOAD, startStallingRegistry, waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Harness, harnessPerFile } from '../src/e2e/harness.ts';
import { containersOn, type HostExpectation, onHosts, waitConverged } from '../src/e2e/observe.ts';
import { Report } from '../src/e2e/report.ts';
import { buildImage, ECHO, hostStates, hostsView, pushAs, rolloutIdOf, sleep, waitApplied, waitProgress } from '../src/e2e/steps.ts';

/**
 * Faults a real fleet meets within weeks: containers removed or stopped by hand, hosts whose clocks
 * are wrong, the APPS stream lost, two workers with one host id, a worker started with no apps on a
 * host that runs some. Each ends with every host converged and nothing lost.
 */
const test = suite('e2e faults: hardening');
const report = new Report('tools/test/e2e-5-hardening.test.ts');
const APPS = ['drift', 'skew', 'lost', 'twin', 'empty', 'frozen', 'stall', 'priv'];
let h: Harness;
let all: string[];

harnessPerFile(
  test,
  report,
  'e2e faults (hardening)',
  {
    apps: () => APPS,
    images: ['nebula/echo:1', ECHO],
    // Short deadlines and intervals keep the run fast; the defaults are 30 s, 60 s and 30 s.
    workerEnv: { RECONCILE_INTERVAL_SECONDS: '1', ENGINE_CALL_TIMEOUT_SECONDS: '2', PULL_STALL_TIMEOUT_SECONDS: '2' },
  },
  async (started) => {
    h = started;
    all = h.hosts.map((x) => x.name);
  },
);

const everywhere = (e: HostExpectation) => onHosts(h.hosts, all, e);

async function create(app: string, port: number, count: number, r: { converged(what: string, ms: number): number }): Promise<void> {
  const t = Date.now();
  const res = await h.rest.expect(200, 'POST', `/api/v2/apps/${app}`, {
    body: { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], containers_per: { server: count }, env_vars: { V: '1' } },
  });
  r.converged('create', await waitConverged(h.hosts, app, everywhere({ count, revision: 1, ports: [port], env: { V: '1' } }), { since: t }));
  await waitApplied(h, rolloutIdOf(res), all);
}

report.case(
  test,
  'fault',
  'drift by hand: containers removed and stopped with the docker CLI',
  'host-1: one container removed (docker rm -f); host-2: one stopped (docker stop); no new revision: the reconcile loop (every 1 s here) brings both back, and the host view counts the repair',
  async (r) => {
    await create('drift', 8500, 2, r);
    const [h1, h2] = [h.hosts[0]!, h.hosts[1]!];
    const t = Date.now();
    await h1.docker('rm', '-f', 'drift-1');
    await h2.docker('stop', '-t', '1', 'drift-2');
    r.converged(
      'removed and stopped by hand',
      await waitConverged(h.hosts, 'drift', everywhere({ count: 2, revision: 1, ports: [8500], env: { V: '1' } }), { since: t }),
    );
    for (const host of [h1, h2]) {
      const view = await waitFor(
        `${host.name} reports the repair`,
        async () => {
          const hv = (await hostsView(h)).find((x) => x.id === host.name);
          const app = hv?.running.find((a) => a.app === 'drift') as { repairs?: number } | undefined;
          return (app?.repairs ?? 0) > 0 ? app : undefined;
        },
        15_000,
        200,
      );
      assert.ok((view.repairs ?? 0) >= 1);
    }
  },
);

/** Replaces the worker of `host` by one with `env` over its settings while `fn` runs; then puts it back. */
async function withWorker<T>(name: string, hostIndex: number, env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const host = h.hosts[hostIndex]!;
  const regular = h.worker(host.name);
  await regular.stop();
  const other = h.extraWorker(name, host, env);
  try {
    await other.start();
    return await fn();
  } finally {
    await other.stop();
    await regular.start();
  }
}

const TEN_MINUTES = 10 * 60_000;

report.case(
  test,
  'fault',
  'clock skew: a host 10 minutes behind, then 10 minutes ahead',
  "host-3's worker runs with its wall clock 10 min behind, then 10 min ahead (a preload moves Date): it stays online in the API, is expected by new rollouts, and its results count; every rollout ends with 3 applied",
  async (r) => {
    await create('skew', 8600, 1, r);
    for (const [label, skew] of [
      ['behind', -TEN_MINUTES],
      ['ahead', TEN_MINUTES],
    ] as const) {
      await withWorker(`worker-host-3-${label}`, 2, { NODE_OPTIONS: `--import=${SKEWED_CLOCK_PRELOAD}`, NEBULA_TEST_CLOCK_SKEW_MS: String(skew) }, async () => {
        await waitFor(
          `host-3 online with its clock ${label}`,
          async () => (await h.rest.expect<{ status: string }>(200, 'GET', '/api/v2/hosts/host-3')).status === 'online',
          20_000,
          200,
        );
        await sleep(3000); // several heartbeats of the skewed clock: still online
        assert.is((await h.rest.expect<{ status: string }>(200, 'GET', '/api/v2/hosts/host-3')).status, 'online');
        const t = Date.now();
        const res = await h.rest.expect(202, 'PATCH', '/api/v2/apps/skew/update', { body: { env_vars: { V: label } } });
        r.converged(`update, clock ${label}`, await waitConverged(h.hosts, 'skew', everywhere({ count: 1, ports: [8600], env: { V: label } }), { since: t }));
        const p = await waitApplied(h, rolloutIdOf(res), all);
        assert.is(p.expected, 3, 'the skewed host is expected');
      });
    }
  },
);

/** The revision the APPS stream holds last for an app, or null. */
async function lastInStream(app: string): Promise<number | null> {
  const nc = await connect(h.natsOptions('admin'));
  try {
    const jsm = await jetstreamManager(nc);
    const m = await jsm.streams.getMessage('APPS', { last_by_subj: `apps.${app}` }).catch(() => null);
    return m === null ? null : (m.json<{ revision: number }>().revision ?? null);
  } finally {
    await nc.close();
  }
}

async function deleteAppsStream(): Promise<void> {
  const nc = await connect(h.natsOptions('admin'));
  try {
    await (await jetstreamManager(nc)).streams.delete('APPS');
  } finally {
    await nc.close();
  }
}

report.case(
  test,
  'fault',
  'APPS stream deleted',
  'the APPS stream is deleted while every host runs the app at revision 2; the API republishes the latest revision of every live app; a change afterwards reaches every host; host-2 rebuilt (worker stopped, every container removed, worker started) adopts every app it serves',
  async (r) => {
    await create('lost', 8700, 1, r);
    const upd = await h.rest.expect(202, 'PATCH', '/api/v2/apps/lost/update', { body: { env_vars: { V: '2' } } });
    await waitApplied(h, rolloutIdOf(upd), all);
    await deleteAppsStream();
    const t = Date.now();
    await waitFor('APPS holds the latest revision of "lost" again', async () => ((await lastInStream('lost')) === 2 ? true : undefined), 30_000, 250);
    r.converged('republished', Date.now() - t);
    for (const app of ['drift', 'skew']) assert.ok((await lastInStream(app)) !== null, `${app} republished too`);
    const t2 = Date.now();
    const next = await h.rest.expect(202, 'PATCH', '/api/v2/apps/lost/update', { body: { env_vars: { V: '3' } } });
    r.converged(
      'change after the loss',
      await waitConverged(h.hosts, 'lost', everywhere({ count: 1, revision: 3, ports: [8700], env: { V: '3' } }), { since: t2 }),
    );
    await waitApplied(h, rolloutIdOf(next), all);
    const rebuilt = h.hosts[1]!;
    await h.worker(rebuilt.name).stop();
    const ids = (await rebuilt.docker('ps', '-aq', '--filter', 'label=io.nebula.owner=nebula')).split('\n').filter(Boolean);
    if (ids.length > 0) await rebuilt.docker('rm', '-f', ...ids);
    const t3 = Date.now();
    await h.worker(rebuilt.name).start();
    r.converged(
      'host-2 rebuilt',
      await waitConverged([rebuilt], 'lost', onHosts([rebuilt], [rebuilt.name], { count: 1, revision: 3, ports: [8700], env: { V: '3' } }), { since: t3 }),
    );
    assert.ok((await containersOn(rebuilt, 'drift')).length === 2, 'drift adopted too');
  },
);

report.case(
  test,
  'fault',
  'duplicate host id',
  "a second worker starts with host-1's id (on host-2's engine, serving no app): the hosts view flags host-1 as duplicated; once the second worker stops, the flag clears",
  async (r) => {
    await create('twin', 8800, 1, r);
    const twin = h.extraWorker('worker-twin-of-host-1', h.hosts[1]!, { HOST_ID: 'host-1', APP_NAME: '' });
    const t = Date.now();
    await twin.start();
    try {
      await waitFor(
        'host-1 flagged as duplicated',
        async () => ((await h.rest.expect<{ duplicate?: boolean }>(200, 'GET', '/api/v2/hosts/host-1')).duplicate === true ? true : undefined),
        20_000,
        200,
      );
      r.converged('flagged', Date.now() - t);
    } finally {
      await twin.stop();
    }
    const t2 = Date.now();
    await waitFor(
      'host-1 no longer flagged',
      async () => ((await h.rest.expect<{ duplicate?: boolean }>(200, 'GET', '/api/v2/hosts/host-1')).duplicate !== true ? true : undefined),
      60_000,
      250,
    );
    r.converged('flag cleared', Date.now() - t2);
  },
);

report.case(
  test,
  'fault',
  'worker started with an empty app list on a host that runs apps',
  "host-3's worker restarted with APP_NAME empty: it refuses to start (exit code and a message naming REMOVE_UNSERVED) and every container on host-3 keeps running; started normally again, nothing was recreated",
  async (r) => {
    await create('empty', 8900, 1, r);
    const host = h.hosts[2]!;
    const before = (await host.docker('ps', '-q', '--filter', 'label=io.nebula.owner=nebula')).split('\n').filter(Boolean).sort();
    await h.worker(host.name).stop();
    const empty = h.extraWorker('worker-host-3-no-apps', host, { APP_NAME: '' });
    const t = Date.now();
    const err = await empty.start().then(
      () => null,
      (e: unknown) => e as Error,
    );
    r.converged('refused', Date.now() - t);
    assert.ok(err !== null, 'the worker refused to start');
    assert.match(empty.output(), /REMOVE_UNSERVED/);
    const after = (await host.docker('ps', '-q', '--filter', 'label=io.nebula.owner=nebula')).split('\n').filter(Boolean).sort();
    assert.equal(after, before, 'every container still running');
    await h.worker(host.name).start();
    await sleep(1500);
    assert.equal((await host.docker('ps', '-q', '--filter', 'label=io.nebula.owner=nebula')).split('\n').filter(Boolean).sort(), before, 'nothing recreated');
  },
);

report.case(
  test,
  'fault',
  'docker engine frozen (SIGSTOP) mid-apply, then thawed',
  "an update to every host; host-2's dockerd is frozen at once: host-2 reports a failed result naming the engine call that did not answer (2 s call deadline here), stays online, and the others apply; thawed, host-2 converges on a retry and the rollout ends applied on all 3",
  async (r) => {
    await create('frozen', 9000, 2, r);
    const victim = h.hosts[1]!;
    const t = Date.now();
    const res = await h.rest.expect(202, 'PATCH', '/api/v2/apps/frozen/update', { body: { env_vars: { V: '2' } } });
    await victim.freezeEngine();
    let thawed = false;
    try {
      const failed = await waitProgress(
        h,
        rolloutIdOf(res),
        'host-2 reports the hung engine',
        (p) => (p.failures.find((f) => f.host === victim.name)?.error ?? '').length > 0,
        30_000,
      );
      const error = failed.failures.find((f) => f.host === victim.name)?.error ?? '';
      assert.match(error, /did not answer within 2 s|EngineTimeoutError/, error);
      r.converged('failure reported', Date.now() - t);
      assert.is(
        (await h.rest.expect<{ status: string }>(200, 'GET', `/api/v2/hosts/${victim.name}`)).status,
        'online',
        'a frozen engine is not an offline host',
      );
      await victim.thawEngine();
      thawed = true;
    } finally {
      if (!thawed) await victim.thawEngine();
    }
    const t2 = Date.now();
    r.converged('after the thaw', await waitConverged(h.hosts, 'frozen', everywhere({ count: 2, revision: 2, ports: [9000], env: { V: '2' } }), { since: t2 }));
    await waitApplied(h, rolloutIdOf(res), all);
  },
);

report.case(
  test,
  'fault',
  'registry that stalls the layer download',
  "the app's image comes through a registry proxy that serves the manifest, then sends 64 bytes of each layer and nothing more: every host reports PullStalledError (2 s stall timeout here) and keeps retrying; once the registry answers again, every host runs the image and the rollout ends applied on all 3",
  async (r) => {
    const proxy = await startStallingRegistry();
    try {
      await h.fleet.relay(proxy.port);
      const pushed = `127.0.0.1:5000/nebula/e2e-${h.runId}-stall:1`;
      await buildImage(pushed, `FROM ${ECHO}\nRUN echo ${h.runId}-stall > /stall-id\n`);
      await pushAs(pushed, pushed);
      const image = pushed.replace('127.0.0.1:5000/', `${proxy.host}/`);
      const t = Date.now();
      const res = await h.rest.expect(200, 'POST', '/api/v2/apps/stall', {
        body: { docker_image: image, starting_ports: [{ '9100': '80' }], containers_per: { server: 1 } },
      });
      const p = await waitProgress(
        h,
        rolloutIdOf(res),
        'every host reports the stalled pull',
        (x) => all.every((n) => /PullStalledError/.test(x.failures.find((f) => f.host === n)?.error ?? '')),
        40_000,
      );
      assert.ok(
        p.failures.every((f) => /stalled: no progress for 2 s/.test(f.error ?? '')),
        JSON.stringify(p.failures),
      );
      assert.ok(proxy.stalled >= 3, `blob downloads stalled: ${proxy.stalled}`);
      r.converged('stall reported on every host', Date.now() - t);
      proxy.stalling = false;
      const t2 = Date.now();
      r.converged(
        'registry back',
        await waitConverged(h.hosts, 'stall', everywhere({ count: 1, revision: 1, ports: [9100] }), { since: t2, timeoutMs: 60_000 }),
      );
      const done = await waitApplied(h, rolloutIdOf(res), all, 30_000);
      assert.ok(Object.values(hostStates(done)).every((s) => s === 'applied'));
    } finally {
      await proxy.close();
    }
  },
);

report.case(
  test,
  'fault',
  'a privileged app an admin set, on hosts with the default policy',
  'the admin may create it (the API allows it to admins); every host refuses it before any pull: a failed result naming the rule and the setting that would allow it, no container',
  async (r) => {
    const t = Date.now();
    const res = await h.rest.expect(200, 'POST', '/api/v2/apps/priv', { body: { docker_image: ECHO, privileged: true, starting_ports: [{ '9200': '80' }] } });
    const p = await waitProgress(h, rolloutIdOf(res), 'every host refuses it', (x) => x.failed === all.length, 30_000);
    r.converged('refused on every host', Date.now() - t);
    assert.is(p.failures.length, all.length);
    for (const f of p.failures) {
      assert.match(f.error ?? '', /refused by this host's policy: privileged \(privileged: true; allow with WORKER_ALLOW_PRIVILEGED=true\)/);
    }
    for (const host of h.hosts) assert.equal(await containersOn(host, 'priv'), [], `${host.name} runs none of it`);
  },
);

test("no credential in any log line of the run (the admin's, the join token, every NATS seed and JWT)", () => {
  const scan = h.secretsInLogs();
  assert.equal(scan.findings, []);
  // It looked: the services' logs, and the run's keys (each host's seed and JWT, the bus's).
  assert.ok(scan.logs >= h.hosts.length + 2, `${scan.logs} logs`);
  assert.ok(scan.logBytes > 10_000, `${scan.logBytes} bytes of logs`);
  assert.ok(scan.secrets >= 5 + 2 * h.hosts.length, `${scan.secrets} secrets`);
});

test.run();
