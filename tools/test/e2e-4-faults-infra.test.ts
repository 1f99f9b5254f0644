import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Harness, harnessPerFile, inHost } from '../src/e2e/harness.ts';
import { containersOn, echoAt, type HostExpectation, onHosts, waitConverged, watchAvailability } from '../src/e2e/observe.ts';
import { Report } from '../src/e2e/report.ts';
import { buildImage, ECHO, hostStates, pushAs, rolloutIdOf, waitApplied, waitProgress } from '../src/e2e/steps.ts';

/**
 * Faults of what the system stands on: NATS restarted mid-rollout, PostgreSQL restarted, one host's
 * Docker engine restarted, the registry unreachable during a pull, a bad image in a rolling update.
 * Each ends with every host converged and every rollout accounted for.
 */
const test = suite('e2e faults: infrastructure');
const report = new Report('tools/test/e2e-4-faults-infra.test.ts');
const APPS = ['natsr', 'pgr', 'engine', 'registry', 'badimg'];
let h: Harness;
let all: string[];
let V2 = '';
let REG = '';
let CRASH = '';

harnessPerFile(test, report, 'e2e faults (infrastructure)', { apps: () => APPS, images: ['nebula/echo:1', ECHO] }, async (started) => {
  h = started;
  all = h.hosts.map((x) => x.name);
  V2 = `127.0.0.1:5000/nebula/e2e-${h.runId}:v2`;
  REG = `127.0.0.1:5000/nebula/e2e-${h.runId}:registry`;
  CRASH = `127.0.0.1:5000/nebula/e2e-${h.runId}:crash`;
  await buildImage(V2, `FROM ${ECHO}\nRUN echo 2 > /version\n`);
  await buildImage(CRASH, `FROM ${ECHO}\nENTRYPOINT ["/bin/false"]\n`);
  await Promise.all([pushAs(V2, V2), pushAs(CRASH, CRASH), pushAs(ECHO, REG)]);
});

const everywhere = (e: HostExpectation) => onHosts(h.hosts, all, e);

async function create(app: string, body: Record<string, unknown>, expect: HostExpectation, r: { converged(what: string, ms: number): number }): Promise<void> {
  const t = Date.now();
  const res = await h.rest.expect(200, 'POST', `/api/v2/apps/${app}`, { body });
  r.converged('create', await waitConverged(h.hosts, app, everywhere({ ...expect, revision: 1 }), { since: t }));
  await waitApplied(h, rolloutIdOf(res), all);
}

report.case(
  test,
  'fault',
  'NATS restarted mid-rollout',
  'the NATS container restarted while a roll of 3 containers is under way: the roll completes on every host, its rollout ends complete with 3 applied, and a change made after the restart arrives too',
  async (r) => {
    await create(
      'natsr',
      { docker_image: ECHO, starting_ports: [{ '8100': '80' }], containers_per: { server: 3 }, env_vars: { V: '1' } },
      { count: 3, ports: [8100], env: { V: '1' } },
      r,
    );
    let t = Date.now();
    const roll = await h.rest.expect(202, 'POST', '/api/v2/apps/natsr/roll');
    await waitFor(
      'a host in the middle of the roll',
      async () => {
        for (const x of h.hosts) {
          const revs = new Set((await containersOn(x, 'natsr')).map((c) => c.revision));
          if (revs.has(1) && revs.has(2)) return true;
        }
        return false;
      },
      20_000,
      30,
    );
    await h.nats.restart(1);
    r.converged(
      'roll across the restart',
      await waitConverged(h.hosts, 'natsr', everywhere({ count: 3, revision: 2, ports: [8100], env: { V: '1' } }), { since: t }),
    );
    await waitApplied(h, rolloutIdOf(roll), all, 45_000);
    t = Date.now();
    const after = await h.rest.expect(202, 'PATCH', '/api/v2/apps/natsr/update', { body: { env_vars: { V: '2' } } });
    r.converged(
      'change after the restart',
      await waitConverged(h.hosts, 'natsr', everywhere({ count: 3, revision: 3, ports: [8100], env: { V: '2' } }), { since: t }),
    );
    await waitApplied(h, rolloutIdOf(after), all);
  },
);

report.case(
  test,
  'fault',
  'PostgreSQL restarted',
  'a change committed, then the PostgreSQL container restarted at once: the change reaches every host and its rollout ends complete (relay and notifier reconnect); the API takes a new change afterwards',
  async (r) => {
    await create('pgr', { docker_image: ECHO, starting_ports: [{ '8200': '80' }], env_vars: { V: '1' } }, { count: 1, ports: [8200], env: { V: '1' } }, r);
    let t = Date.now();
    const before = await h.rest.expect(202, 'PATCH', '/api/v2/apps/pgr/update', { body: { env_vars: { V: '2' } } });
    await h.postgres.restart(1);
    r.converged(
      'change across the restart',
      await waitConverged(h.hosts, 'pgr', everywhere({ count: 1, revision: 2, ports: [8200], env: { V: '2' } }), { since: t }),
    );
    await waitApplied(h, rolloutIdOf(before), all, 45_000);
    // The pools notice their dead connections on first use; a client may see one failure.
    await waitFor('the API to read again', async () => (await h.rest.call('GET', '/api/v2/apps/pgr')).status === 200, 20_000, 200);
    t = Date.now();
    const after = await waitFor(
      'the API to take a change',
      async () => {
        const res = await h.rest.call('PATCH', '/api/v2/apps/pgr/update', { body: { env_vars: { V: '3' } } });
        return res.status === 202 ? res.body : undefined;
      },
      20_000,
      200,
    );
    r.converged(
      'change after the restart',
      await waitConverged(h.hosts, 'pgr', everywhere({ count: 1, revision: 3, ports: [8200], env: { V: '3' } }), { since: t }),
    );
    await waitApplied(h, rolloutIdOf(after), all);
  },
);

report.case(
  test,
  'fault',
  "one host's Docker engine restarted",
  "host-2's engine stopped; a change applies on host-1/3 while host-2 reports it failed (engine unreachable, retrying) and its worker keeps trying; engine back: host-2 converges and the rollout ends with 3 applied",
  async (r) => {
    await create(
      'engine',
      { docker_image: ECHO, starting_ports: [{ '8300': '80' }], containers_per: { server: 2 }, env_vars: { V: '1' } },
      { count: 2, ports: [8300], env: { V: '1' } },
      r,
    );
    const down = h.hosts[1]!;
    await down.stopEngine();
    let id = '';
    let t = 0;
    try {
      t = Date.now();
      id = rolloutIdOf(await h.rest.expect(202, 'PATCH', '/api/v2/apps/engine/update', { body: { env_vars: { V: '2' } } }));
      const up = all.filter((n) => n !== down.name);
      await waitConverged(
        h.hosts.filter((x) => x.name !== down.name),
        'engine',
        onHosts(h.hosts, up, { count: 2, revision: 2, ports: [8300], env: { V: '2' } }),
        { since: t },
      );
      const p = await waitProgress(h, id, `${down.name} failed, the others applied`, (q) => hostStates(q)[down.name] === 'failed' && q.applied === 2);
      assert.match(p.failures.find((f) => f.host === down.name)?.error ?? '', /EngineUnavailableError.*retrying/);
    } finally {
      await down.startEngine();
    }
    r.converged('engine back', await waitConverged(h.hosts, 'engine', everywhere({ count: 2, revision: 2, ports: [8300], env: { V: '2' } }), { since: t }));
    await waitApplied(h, id, all, 45_000);
  },
);

/** Refuses every connection a host makes to the registry (its 127.0.0.1:5000), or allows them again. */
async function registryReachable(reachable: boolean): Promise<void> {
  const rule = ['OUTPUT', '-p', 'tcp', '-d', '127.0.0.1', '--dport', '5000', '-j', 'REJECT', '--reject-with', 'tcp-reset'];
  await Promise.all(
    h.hosts.map((x) =>
      inHost(x, 'iptables', [reachable ? '-D' : '-I', ...rule]).catch((err: unknown) => {
        if (!reachable) throw err;
      }),
    ),
  );
}

report.case(
  test,
  'fault',
  'registry down during a pull',
  'the registry unreachable from every host (connections refused); the tag re-pushed; `pull`: each host reports failed (registry unreachable, retrying) and keeps serving the old content; registry back: every host serves the new content and the rollout ends with 3 applied',
  async (r) => {
    await create('registry', { docker_image: REG, starting_ports: [{ '8400': '80' }] }, { count: 1, ports: [8400], version: '1' }, r);
    await pushAs(V2, REG);
    await registryReachable(false);
    let id = '';
    let t = 0;
    try {
      id = rolloutIdOf(await h.rest.expect(202, 'POST', '/api/v2/apps/registry/pull'));
      const p = await waitProgress(h, id, 'every host failed', (q) => q.failed === 3);
      for (const f of p.failures) assert.match(f.error ?? '', /RegistryUnavailableError.*retrying/, f.host);
      for (const x of h.hosts) assert.is((await echoAt(x, 8400))?.version, '1', `${x.name} keeps serving`);
    } finally {
      t = Date.now();
      await registryReachable(true);
    }
    r.converged('registry back', await waitConverged(h.hosts, 'registry', everywhere({ count: 1, revision: 2, ports: [8400], version: '2' }), { since: t }));
    await waitApplied(h, id, all, 45_000);
  },
);

report.case(
  test,
  'fault',
  'bad image in a rolling update',
  'rolling_restart app of 2 per host: an image that does not exist fails on every host before anything is touched (no port down, same containers); an image whose containers exit fails at the first container (the other keeps serving, never more than one down; `nebula rollouts watch` exits 3); rollback to revision 1 converges everywhere',
  async (r) => {
    const serving: HostExpectation = { count: 2, ports: [8500], env: { V: '1' }, version: '1' };
    await create(
      'badimg',
      { docker_image: ECHO, starting_ports: [{ '8500': '80' }], containers_per: { server: 2 }, rolling_restart: true, env_vars: { V: '1' } },
      serving,
      r,
    );
    const ids = async () => Promise.all(h.hosts.map(async (x) => (await containersOn(x, 'badimg')).map((c) => c.id)));
    const before = await ids();

    const missing = await watchAvailability(h.hosts, [8500, 8501], async () => {
      const res = await h.rest.expect(202, 'PATCH', '/api/v2/apps/badimg/update', { body: { docker_image: `127.0.0.1:5000/nebula/e2e-${h.runId}-missing:1` } });
      return waitProgress(h, rolloutIdOf(res), 'failed everywhere', (q) => q.failed === 3 && q.complete);
    });
    for (const f of missing.result.failures) assert.match(f.error ?? '', /ImageNotFoundError/, f.host);
    for (const x of h.hosts) {
      assert.is(missing.maxDown[x.name], 0, `${x.name}: nothing went down`);
      assert.equal([...missing.versions[x.name]!], ['1/"1"'], `${x.name}: only the old containers answered`);
    }
    assert.equal(await ids(), before, 'the same containers');

    const crash = await watchAvailability(h.hosts, [8500, 8501], async () => {
      const res = await h.rest.expect(202, 'PATCH', '/api/v2/apps/badimg/update', { body: { docker_image: CRASH } });
      const watched = await h.cli(['rollouts', 'watch', rolloutIdOf(res)]);
      return { id: rolloutIdOf(res), watched };
    });
    assert.is(crash.result.watched.code, 3, `the CLI says hosts failed: ${crash.result.watched.stdout}${crash.result.watched.stderr}`);
    const p = await waitProgress(h, crash.result.id, 'failed everywhere', (q) => q.failed === 3);
    for (const f of p.failures) assert.match(f.error ?? '', /ContainerFailedError/, f.host);
    for (const x of h.hosts) {
      assert.ok(crash.maxDown[x.name]! <= 1, `${x.name}: ${crash.maxDown[x.name]} down at once`);
      assert.is((await echoAt(x, 8501))?.env.V, '1', `${x.name}: the second container still serves the old revision`);
    }

    const t = Date.now();
    const back = await h.rest.expect(202, 'POST', '/api/v2/apps/badimg/rollback', { body: { revision: 1 } });
    r.converged('rollback', await waitConverged(h.hosts, 'badimg', everywhere({ ...serving, image: ECHO }), { since: t }));
    await waitApplied(h, rolloutIdOf(back), all);
  },
);

test.run();
