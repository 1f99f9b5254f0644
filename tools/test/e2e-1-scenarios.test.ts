import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Harness, harnessPerFile } from '../src/e2e/harness.ts';
import { containersOn, echoAt, type HostExpectation, onHosts, waitConverged, watchAvailability } from '../src/e2e/observe.ts';
import { Report } from '../src/e2e/report.ts';
import { buildImage, createdSince, ECHO, hostsView, pushAs, rolloutIdOf, waitApplied } from '../src/e2e/steps.ts';

/**
 * Scenarios 1-6 of the end-to-end suite, on three hosts that all serve every app: ports, env vars,
 * stop/start/restart/rolling restart, force pull of a re-pushed tag, containers per core/server/
 * memory with scaling, and a changed image. Changes go through REST (as curl) and the typed client;
 * every check looks at the hosts' engines and published ports.
 */
const test = suite('e2e scenarios');
const report = new Report('tools/test/e2e-1-scenarios.test.ts');
const APPS = ['ports', 'env', 'life', 'pull', 'scale', 'image'];
let h: Harness;
let all: string[];
let V2 = '';
let MOVING = '';

const everywhere = (e: HostExpectation) => onHosts(h.hosts, all, e);

harnessPerFile(test, report, 'e2e scenarios', { apps: () => APPS, images: ['nebula/echo:1', ECHO] }, async (started) => {
  h = started;
  all = h.hosts.map((x) => x.name);
  V2 = `127.0.0.1:5000/nebula/e2e-${h.runId}:v2`;
  MOVING = `127.0.0.1:5000/nebula/e2e-${h.runId}:moving`;
  await buildImage(V2, `FROM ${ECHO}\nRUN echo 2 > /version\n`);
  await pushAs(V2, V2);
  await pushAs(ECHO, MOVING);
});

report.case(
  test,
  'scenario',
  '1. change ports',
  'a port map and a plain port (container port from $PORT) answer on every host at port+i; the old ports stop answering',
  async (r) => {
    let t = Date.now();
    const created = await h.rest.expect(200, 'POST', '/api/v2/apps/ports', {
      body: { docker_image: ECHO, starting_ports: [{ '8100': '80' }], containers_per: { server: 2 }, env_vars: { V: '1' } },
    });
    r.converged('create', await waitConverged(h.hosts, 'ports', everywhere({ count: 2, revision: 1, ports: [8100], env: { V: '1' } }), { since: t }));
    await waitApplied(h, rolloutIdOf(created), all);

    t = Date.now();
    await h.rest.expect(202, 'PATCH', '/api/v2/apps/ports/update', {
      body: { starting_ports: [{ '8110': '8120' }, 8120], env_vars: { V: '1', PORT: '8120' } },
    });
    r.converged(
      'ports changed',
      await waitConverged(h.hosts, 'ports', everywhere({ count: 2, revision: 2, ports: [8110, 8120], env: { PORT: '8120' }, closedPorts: [8100, 8101] }), {
        since: t,
      }),
    );
    for (const host of h.hosts) {
      for (const port of [8110, 8111, 8120, 8121]) assert.is((await echoAt(host, port))?.port, 8120, `${host.name}:${port} reaches the container's port 8120`);
    }
  },
);

report.case(
  test,
  'scenario',
  '2. change env vars',
  'typed client: create, then a patch replaces env_vars; every container on every host shows the new set (removed variable gone)',
  async (r) => {
    const nebula = h.client(1);
    let t = Date.now();
    await nebula.apps.create.mutate({
      name: 'env',
      docker_image: ECHO,
      starting_ports: [{ '8200': '80' }],
      containers_per: { server: 2 },
      env_vars: { V: '1', KEEP: 'k' },
    });
    r.converged('create', await waitConverged(h.hosts, 'env', everywhere({ count: 2, revision: 1, ports: [8200], env: { V: '1', KEEP: 'k' } }), { since: t }));
    t = Date.now();
    const changed = await nebula.apps.patch.mutate({ name: 'env', env_vars: { V: '2', MODE: 'prod' } });
    assert.is(changed.app_id, 2);
    r.converged(
      'env changed',
      await waitConverged(h.hosts, 'env', everywhere({ count: 2, revision: 2, ports: [8200], env: { V: '2', MODE: 'prod' } }), { since: t }),
    );
    for (const host of h.hosts) for (const port of [8200, 8201]) assert.is((await echoAt(host, port))?.env.KEEP, undefined, `${host.name}:${port} lost KEEP`);
    await waitApplied(h, changed.rollout_id, all);
  },
);

report.case(
  test,
  'scenario',
  '3. stop, start, restart, rolling restart',
  'stop removes every container and closes the ports; start brings them back; restart replaces all; a roll replaces all while polling shows at most one container per host down at any moment',
  async (r) => {
    let t = Date.now();
    await h.rest.expect(200, 'POST', '/api/v2/apps/life', {
      body: { docker_image: ECHO, starting_ports: [{ '8300': '80' }], containers_per: { server: 3 }, env_vars: { V: '1' } },
    });
    const three: HostExpectation = { count: 3, ports: [8300], env: { V: '1' } };
    r.converged('create', await waitConverged(h.hosts, 'life', everywhere({ ...three, revision: 1 }), { since: t }));

    t = Date.now();
    const stopped = await h.rest.expect(202, 'POST', '/api/v2/apps/life/stop');
    assert.is(stopped.running, false);
    r.converged('stop', await waitConverged(h.hosts, 'life', everywhere({ count: 0, closedPorts: [8300, 8301, 8302] }), { since: t }));
    await waitApplied(h, rolloutIdOf(stopped), all);
    const refused = await h.rest.call('POST', '/api/v2/apps/life/restart');
    assert.is(refused.status, 403, 'restart of a stopped app is refused');
    assert.equal(refused.body, { running_before_restart: false });

    t = Date.now();
    await h.rest.expect(202, 'POST', '/api/v2/apps/life/start');
    r.converged('start', await waitConverged(h.hosts, 'life', everywhere({ ...three, revision: 3 }), { since: t }));

    const before = new Map(await Promise.all(h.hosts.map(async (x) => [x.name, (await containersOn(x, 'life')).map((c) => c.id)] as const)));
    t = Date.now();
    const restarted = await h.rest.expect(202, 'POST', '/api/v2/apps/life/restart');
    r.converged('restart', await waitConverged(h.hosts, 'life', everywhere({ ...three, revision: 4 }), { since: t }));
    for (const x of h.hosts) {
      const ids = (await containersOn(x, 'life')).map((c) => c.id);
      assert.ok(
        ids.every((id) => !before.get(x.name)!.includes(id)),
        `${x.name}: restart replaced every container`,
      );
    }
    await waitApplied(h, rolloutIdOf(restarted), all);

    const beforeRoll = new Map(await Promise.all(h.hosts.map(async (x) => [x.name, (await containersOn(x, 'life')).map((c) => c.id)] as const)));
    t = Date.now();
    const watch = await watchAvailability(h.hosts, [8300, 8301, 8302], async () => {
      const rolled = await h.rest.expect(202, 'POST', '/api/v2/apps/life/roll');
      const ms = await waitConverged(h.hosts, 'life', everywhere({ ...three, revision: 5 }), { since: t });
      await waitApplied(h, rolloutIdOf(rolled), all);
      return ms;
    });
    r.converged('rolling restart', watch.result);
    assert.ok(watch.samples >= 10, `polled often enough (${watch.samples} samples)`);
    for (const x of h.hosts) {
      assert.ok(watch.maxDown[x.name]! <= 1, `${x.name}: ${watch.maxDown[x.name]} containers down at once during the roll`);
      const ids = (await containersOn(x, 'life')).map((c) => c.id);
      assert.ok(
        ids.every((id) => !beforeRoll.get(x.name)!.includes(id)),
        `${x.name}: the roll replaced every container`,
      );
    }
  },
);

report.case(
  test,
  'scenario',
  '4. force pull after re-pushing a tag',
  'same tag pushed again with new content; `pull` makes every host serve the new content (version 2) from new containers',
  async (r) => {
    let t = Date.now();
    await h.rest.expect(200, 'POST', '/api/v2/apps/pull', {
      body: { docker_image: MOVING, starting_ports: [{ '8400': '80' }], containers_per: { server: 2 } },
    });
    r.converged('create', await waitConverged(h.hosts, 'pull', everywhere({ count: 2, revision: 1, ports: [8400], version: '1' }), { since: t }));
    await pushAs(V2, MOVING);
    t = Date.now();
    const pulled = await h.rest.expect(202, 'POST', '/api/v2/apps/pull/pull');
    r.converged('pull', await waitConverged(h.hosts, 'pull', everywhere({ count: 2, revision: 2, ports: [8400], version: '2', image: MOVING }), { since: t }));
    await waitApplied(h, rolloutIdOf(pulled), all);
    // New containers from the new content, once each.
    for (const x of h.hosts) assert.equal((await createdSince(x, 'pull', t)).sort(), ['pull-1', 'pull-2'], x.name);
  },
);

report.case(
  test,
  'scenario',
  '5. containers per core, server and memory; scaling',
  "server 1 -> 3 (the first container kept), cpu 2 -> 2 x cores, memory -> total MB / N, server 3 -> 1 (the first kept); counts from each host's cores and memory as the API reports them",
  async (r) => {
    const nebula = h.client(0);
    const facts = new Map((await hostsView(h)).map((x) => [x.id, x]));
    const per = (f: (x: { cores: number; memory_mb: number }) => number) => Object.fromEntries(h.hosts.map((x) => [x.name, f(facts.get(x.name)!)]));
    // No revision expected: containers that a count change keeps still carry the revision that made them.
    const expectCounts = (counts: Record<string, number>) =>
      Object.fromEntries(h.hosts.map((x) => [x.name, { count: counts[x.name]!, ports: [8500], env: { V: '1' } }]));
    const firstIds = async () => Object.fromEntries(await Promise.all(h.hosts.map(async (x) => [x.name, (await containersOn(x, 'scale'))[0]?.id] as const)));

    let t = Date.now();
    await nebula.apps.create.mutate({
      name: 'scale',
      docker_image: ECHO,
      starting_ports: [{ '8500': '80' }],
      containers_per: { server: 1 },
      env_vars: { V: '1' },
    });
    r.converged('server 1', await waitConverged(h.hosts, 'scale', expectCounts(per(() => 1)), { since: t }));
    const first = await firstIds();

    t = Date.now();
    await nebula.apps.patch.mutate({ name: 'scale', containers_per: { server: 3 } });
    r.converged('server 3', await waitConverged(h.hosts, 'scale', expectCounts(per(() => 3)), { since: t }));
    assert.equal(await firstIds(), first, 'scaling up keeps the running containers');

    t = Date.now();
    await nebula.apps.patch.mutate({ name: 'scale', containers_per: { cpu: 2 } });
    const byCpu = per((x) => Math.floor(x.cores * 2));
    r.converged('cpu 2', await waitConverged(h.hosts, 'scale', expectCounts(byCpu), { since: t }));

    t = Date.now();
    const memHost = facts.get(h.hosts[0]!.name)!.memory_mb;
    const mb = Math.floor(memHost / 2) - 1;
    await nebula.apps.patch.mutate({ name: 'scale', containers_per: { memory: mb } });
    r.converged('memory', await waitConverged(h.hosts, 'scale', expectCounts(per((x) => Math.max(1, Math.floor(x.memory_mb / mb)))), { since: t }));

    const beforeDown = await firstIds();
    t = Date.now();
    await nebula.apps.patch.mutate({ name: 'scale', containers_per: { server: 1 } });
    r.converged('server 1 again', await waitConverged(h.hosts, 'scale', expectCounts(per(() => 1)), { since: t }));
    assert.equal(await firstIds(), beforeDown, 'scaling down keeps the first container');
    for (const x of h.hosts) for (const port of [8501, 8502]) assert.is(await echoAt(x, port, 1000), null, `${x.name}:${port} closed after scaling down`);
  },
);

report.case(test, 'scenario', '6. change image', 'PUT a new docker_image; every host runs it (engine shows the image, HTTP shows version 2)', async (r) => {
  let t = Date.now();
  await h.rest.expect(200, 'POST', '/api/v2/apps/image', { body: { docker_image: ECHO, starting_ports: [{ '8600': '80' }], containers_per: { server: 2 } } });
  r.converged('create', await waitConverged(h.hosts, 'image', everywhere({ count: 2, revision: 1, ports: [8600], version: '1', image: ECHO }), { since: t }));
  t = Date.now();
  const changed = await h.rest.expect(202, 'PUT', '/api/v2/apps/image/update', { body: { docker_image: V2 } });
  r.converged(
    'image changed',
    await waitConverged(h.hosts, 'image', everywhere({ count: 2, revision: 2, ports: [8600], version: '2', image: V2 }), { since: t }),
  );
  await waitApplied(h, rolloutIdOf(changed), all);
});

test("no credential in any log line of the run (the admin's, the join token, every NATS seed and JWT)", () => {
  const scan = h.secretsInLogs();
  assert.equal(scan.findings, []);
  // It looked: the services' logs, and the run's keys (each host's seed and JWT, the bus's).
  assert.ok(scan.logs >= h.hosts.length + 2, `${scan.logs} logs`);
  assert.ok(scan.logBytes > 10_000, `${scan.logBytes} bytes of logs`);
  assert.ok(scan.secrets >= 5 + 2 * h.hosts.length, `${scan.secrets} secrets`);
});

test.run();
