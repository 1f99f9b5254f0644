import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Harness, harnessPerFile } from '../src/e2e/harness.ts';
import { containersOn, echoAt, onHosts, waitConverged } from '../src/e2e/observe.ts';
import { Report } from '../src/e2e/report.ts';
import type { RestResponse } from '../src/e2e/rest.ts';
import { ECHO, hostsView, progressOf, rolloutIdOf, waitApplied, waitProgress } from '../src/e2e/steps.ts';

/**
 * Scenario 7 (hosts with different APP_NAME lists, all driven from one API; rollback; delete; rollout
 * progress that matches what the hosts run) and bad input (explicit cases and a thousand generated
 * payloads: always a 4xx with a JSON error, never a 5xx, nothing stored or sent to a host).
 */
const test = suite('e2e fleet and bad input');
const report = new Report('tools/test/e2e-2-fleet.test.ts');
// host-1 serves alpha and beta, host-2 alpha, host-3 beta; all serve steady (the bad-input target).
const SERVES = [
  ['alpha', 'beta', 'steady'],
  ['alpha', 'steady'],
  ['beta', 'steady'],
];
let h: Harness;

// Host usage every 2 s (default 60 s), for the reports case.
harnessPerFile(
  test,
  report,
  'e2e fleet',
  { apps: (i) => SERVES[i]!, images: ['nebula/echo:1', ECHO], workerEnv: { WORKER_REPORT_INTERVAL_SECONDS: '2' } },
  async (started) => {
    h = started;
  },
);

/** The CLI's --json output: one document, or NDJSON (one per change) when it follows a rollout: the last. */
function lastJson(stdout: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch {
    const lines = stdout.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]!);
  }
}

const servedBy = (app: string) => h.hosts.filter((_, i) => SERVES[i]!.includes(app)).map((x) => x.name);

report.case(
  test,
  'scenario',
  '7. hosts with different APP_NAME lists; rollback; delete; progress matches the hosts',
  'alpha (nebula CLI, --wait) runs only on host-1/2, beta (typed client) only on host-1/3; each rollout expects and reports exactly those hosts; hosts view and progress agree with the engines; two updates (REST) then rollback to revision 1 (CLI; config back, history says so); delete removes beta everywhere and leaves alpha untouched',
  async (r) => {
    const alphaHosts = servedBy('alpha');
    const betaHosts = servedBy('beta');
    let t = Date.now();
    // alpha through the CLI (config on stdin, --wait follows the rollout), beta through the typed client.
    const [created, beta] = await Promise.all([
      h.cli(['apps', 'create', 'alpha', '-f', '-', '--wait', '--json'], {
        stdin: JSON.stringify({ docker_image: ECHO, starting_ports: [{ '8100': '80' }], containers_per: { server: 2 }, env_vars: { V: '1' } }),
      }),
      h
        .client(1)
        .apps.create.mutate({ name: 'beta', docker_image: ECHO, starting_ports: [{ '8200': '80' }], containers_per: { server: 2 }, env_vars: { B: '1' } }),
    ]);
    assert.is(created.code, 0, created.stderr);
    const alpha = lastJson(created.stdout) as { app_id: number; rollout_id: string; rollout: { complete: boolean; applied: number } };
    assert.is(alpha.app_id, 1);
    assert.ok(alpha.rollout.complete && alpha.rollout.applied === 2, `the CLI waited for the rollout: ${JSON.stringify(alpha.rollout)}`);
    r.converged(
      'create alpha',
      await waitConverged(h.hosts, 'alpha', onHosts(h.hosts, alphaHosts, { count: 2, revision: 1, ports: [8100], env: { V: '1' } }), { since: t }),
    );
    r.converged(
      'create beta',
      await waitConverged(h.hosts, 'beta', onHosts(h.hosts, betaHosts, { count: 2, revision: 1, ports: [8200], env: { B: '1' } }), { since: t }),
    );
    for (const [id, hosts] of [
      [rolloutIdOf(alpha), alphaHosts],
      [beta.rollout_id, betaHosts],
    ] as const) {
      const p = await waitApplied(h, id, hosts);
      assert.is(p.expected, 2, 'only the hosts that serve the app are expected');
      assert.equal(p.hosts.map((x) => x.host).sort(), [...hosts].sort());
    }
    // Nothing of an app on a host that does not serve it, not even on its ports.
    for (const x of h.hosts) {
      if (!alphaHosts.includes(x.name)) assert.is(await echoAt(x, 8100, 1000), null);
      if (!betaHosts.includes(x.name)) assert.is(await echoAt(x, 8200, 1000), null);
    }

    t = Date.now();
    await h.rest.expect(202, 'PATCH', '/api/v2/apps/alpha/update', { body: { env_vars: { V: '2' } } });
    const third = await h.rest.expect(202, 'PATCH', '/api/v2/apps/alpha/update', { body: { env_vars: { V: '3' } } });
    r.converged(
      'two updates',
      await waitConverged(h.hosts, 'alpha', onHosts(h.hosts, alphaHosts, { count: 2, revision: 3, ports: [8100], env: { V: '3' } }), { since: t }),
    );
    await waitApplied(h, rolloutIdOf(third), alphaHosts);

    t = Date.now();
    const rolledBack = await h.cli(['apps', 'rollback', 'alpha', '1', '--json'], { api: 1 });
    assert.is(rolledBack.code, 0, rolledBack.stderr);
    const back = lastJson(rolledBack.stdout) as { app_id: number; env_vars: unknown; rollout_id: string };
    assert.is(back.app_id, 4);
    assert.equal(back.env_vars, { V: '1' });
    r.converged(
      'rollback to 1',
      await waitConverged(h.hosts, 'alpha', onHosts(h.hosts, alphaHosts, { count: 2, revision: 4, ports: [8100], env: { V: '1' } }), { since: t }),
    );
    const history = await h.rest.expect<{ revisions: Array<{ app_id: number; action: string }> }>(200, 'GET', '/api/v2/apps/alpha/history');
    assert.equal(
      history.revisions.map((x) => [x.app_id, x.action]),
      [
        [4, 'rollback'],
        [3, 'update'],
        [2, 'update'],
        [1, 'create'],
      ],
    );

    const shown = await h.cli(['rollouts', 'get', back.rollout_id]);
    assert.is(shown.code, 0, shown.stderr);
    for (const host of alphaHosts) assert.match(shown.stdout, host, 'the CLI lists the hosts of the rollout');
    // Progress matches the engines: every rollout of alpha is complete on exactly alpha's hosts,
    // the latest one applied where the containers run revision 4.
    const latest = await waitApplied(h, rolloutIdOf(back), alphaHosts);
    for (const x of h.hosts.filter((y) => alphaHosts.includes(y.name))) {
      const cs = await containersOn(x, 'alpha');
      assert.ok(
        cs.every((c) => c.revision === latest.revision && c.incarnation === latest.incarnation),
        `${x.name} runs what the rollout says`,
      );
    }
    const list = await h.rest.expect<{
      rollouts: Array<{ id: string; revision: number; complete: boolean; pending: number; expected: number; failed: number }>;
    }>(200, 'GET', '/api/v2/apps/alpha/rollouts');
    assert.equal(
      list.rollouts.map((x) => x.revision),
      [4, 3, 2, 1],
    );
    for (const ro of list.rollouts) {
      const p = await waitProgress(h, ro.id, 'every host accounted for', (q) => q.complete && q.pending === 0 && q.failed === 0);
      assert.equal(p.hosts.map((x) => x.host).sort(), alphaHosts, `rollout ${ro.revision} involves alpha's hosts only`);
      for (const host of p.hosts) assert.ok(host.state === 'applied' || host.state === 'superseded', `rollout ${ro.revision} on ${host.host}: ${host.state}`);
    }
    // The hosts view (from heartbeats) says what each engine runs.
    const { waitFor } = await import('@nebula/test-kit');
    await waitFor(
      'hosts view to match the engines',
      async () => {
        const view = await hostsView(h);
        for (const [i, x] of h.hosts.entries()) {
          const v = view.find((y) => y.id === x.name);
          if (v?.status !== 'online' || JSON.stringify([...v.apps].sort()) !== JSON.stringify([...SERVES[i]!].sort())) return false;
          for (const app of ['alpha', 'beta']) {
            const cs = await containersOn(x, app);
            const run = v.running.find((y) => y.app === app);
            if (cs.length === 0 ? run !== undefined && run.containers.length > 0 : run?.revision !== cs[0]!.revision || run.containers.length !== cs.length)
              return false;
          }
        }
        return true;
      },
      15_000,
      250,
    );

    const alphaIds = await Promise.all(h.hosts.map(async (x) => (await containersOn(x, 'alpha')).map((c) => c.id)));
    t = Date.now();
    const del = await h.rest.call('DELETE', '/api/v2/apps/beta');
    assert.is(del.status, 200);
    assert.equal(del.body, {});
    r.converged('delete beta', await waitConverged(h.hosts, 'beta', onHosts(h.hosts, betaHosts, { count: 0, closedPorts: [8200, 8201] }), { since: t }));
    await waitApplied(h, del.headers.get('x-nebula-rollout-id') ?? '', betaHosts);
    assert.equal(await Promise.all(h.hosts.map(async (x) => (await containersOn(x, 'alpha')).map((c) => c.id))), alphaIds, 'alpha untouched');
    assert.equal((await h.rest.call('GET', '/api/v2/apps/beta')).body, { app_exists: false });
    assert.equal((await h.rest.expect<{ apps: string[] }>(200, 'GET', '/api/v2/apps')).apps.sort(), ['alpha']);
  },
);

// ---------------------------------------------------------------------------------------------
// Bad input

/** What must not change: apps, their docs, histories and rollouts, and the containers on every host. */
async function snapshot(): Promise<unknown> {
  const { apps } = await h.rest.expect<{ apps: string[] }>(200, 'GET', '/api/v2/apps');
  const docs = [];
  for (const name of apps.sort()) {
    const { rollout, ...doc } = await h.rest.expect<{ rollout: { id: string } | null }>(200, 'GET', `/api/v2/apps/${name}`);
    const history = await h.rest.expect(200, 'GET', `/api/v2/apps/${name}/history`);
    const rollouts = await h.rest.expect<{ rollouts: Array<{ id: string }> }>(200, 'GET', `/api/v2/apps/${name}/rollouts?limit=100`);
    docs.push({ doc, latest: rollout?.id, history, rollouts: rollouts.rollouts.map((x) => x.id) });
  }
  const containers = await Promise.all(
    h.hosts.map(async (x) => [x.name, (await x.docker('ps', '-aq', '--no-trunc', '--filter', 'label=io.nebula.owner=nebula')).split('\n').sort()]),
  );
  return { apps, docs, containers };
}

const INVALID_NAMES = ['a.b', 'a b', 'a*', '>', 'a>b', 'a/b', 'ünïcode', '日本', 'emoji-🙂', '-lead', '_lead', 'x'.repeat(64), 'a\tb', 'apps.>'];
const FIELDS = [
  'docker_image',
  'starting_ports',
  'containers_per',
  'env_vars',
  'running',
  'networks',
  'volumes',
  'devices',
  'privileged',
  'rolling_restart',
  'command',
  'entrypoint',
  'labels',
  'memory_limit_mb',
  'cpu_limit',
  'healthcheck',
];

/** Values of the wrong type or out of range, per field: any one of them makes a config invalid. */
const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));
const badPort = fc.oneof(
  fc.integer({ max: 0 }),
  fc.integer({ min: 65_536 }),
  fc.double({ min: 1.01, max: 65_000, noInteger: true, noNaN: true }),
  fc.constant(null),
);
const WRONG: Record<string, fc.Arbitrary<unknown>> = {
  docker_image: fc.oneof(notString, fc.constantFrom('', 'has space', 'UPPER:Case', 'a::b', 'x@sha256:nothex')),
  starting_ports: fc.oneof(
    fc.oneof(fc.string(), fc.integer(), fc.object({ maxDepth: 0 })),
    fc.oneof(badPort, fc.constant('80')).map((p) => [p]),
    badPort.map((p) => [{ [String(p)]: '80' }]),
    badPort.map((p) => [{ '8080': p }]),
    fc.constant([{}]),
    fc.integer({ min: 1, max: 65_535 }).map((p) => [p, p]),
    fc.integer({ min: 1, max: 65_535 }).map((p) => [{ [String(p)]: '80' }, p]),
  ),
  containers_per: fc.oneof(
    fc.string(),
    fc.integer(),
    fc.constant({}),
    fc.constant({ server: -1 }),
    fc.constant({ server: 1, cpu: 1 }),
    fc.constant({ pods: 1 }),
    fc.constant({ server: 1.5 }),
    fc.constant({ cpu: 0 }),
    fc.constant({ server: 1001 }),
  ),
  env_vars: fc.oneof(
    fc.string(),
    fc.integer(),
    fc.constant(['A=1']),
    fc.constant({ '1BAD': 'x' }),
    fc.constant({ 'A B': 'x' }),
    fc.constant({ A: { nested: 1 } }),
    fc.constant({ A: null }),
    fc.constant({ A: 'nul\u0000' }),
  ),
  running: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.constant([])),
  networks: fc.oneof(fc.string(), fc.constant(['host', 'bridge']), fc.constant(['a', 'a']), fc.constant([1]), fc.constant(['bad name'])),
  volumes: fc.oneof(fc.string(), fc.constant(['nocolon']), fc.constant(['/a:relative']), fc.constant(['/a:/b:xx'])),
  devices: fc.oneof(fc.string(), fc.constant(['relative']), fc.constant(['/dev/a:/dev/b:rwx'])),
  privileged: fc.oneof(fc.string(), fc.integer(), fc.constant({})),
  rolling_restart: fc.oneof(fc.string(), fc.integer(), fc.constant([true])),
  command: fc.oneof(fc.string(), fc.integer(), fc.constant([1])),
  entrypoint: fc.oneof(fc.string(), fc.constant({ a: 1 })),
  labels: fc.oneof(fc.string(), fc.constant({ 'io.nebula.app': 'x' }), fc.constant({ orchestrator: 'x' }), fc.constant({ ok: 1 })),
  memory_limit_mb: fc.oneof(fc.string(), fc.constantFrom(0, 5, -1, 1.5)),
  cpu_limit: fc.oneof(fc.string(), fc.constantFrom(0, -1, 2000)),
  healthcheck: fc.oneof(
    fc.string(),
    fc.constant({ test: ['CMD'] }),
    fc.constant({ test: ['X', 'y'] }),
    fc.constant({ test: ['CMD', 'true'], retries: 0 }),
    fc.constant({ test: ['CMD', 'true'], bogus: 1 }),
  ),
};

const validBase = fc.record(
  {
    docker_image: fc.constant(ECHO),
    starting_ports: fc.constantFrom([], [{ '9900': '80' }], [9901]),
    env_vars: fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    running: fc.boolean(),
  },
  { requiredKeys: ['docker_image'] },
);

type Body = { kind: 'json'; value: unknown } | { kind: 'text'; text: string };

/** A config that is invalid by construction: a valid one plus one poison. */
const poisonedConfig: fc.Arbitrary<Body> = fc.oneof(
  // One field of the wrong type or out of range.
  fc
    .tuple(validBase, fc.constantFrom(...FIELDS))
    .chain(([base, field]) => WRONG[field]!.map((v) => ({ kind: 'json' as const, value: { ...base, [field]: v } }))),
  // An unknown field.
  fc
    .tuple(
      validBase,
      fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !FIELDS.includes(k) && !['app_name', 'name', '__proto__'].includes(k)),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .map(([base, k, v]) => ({ kind: 'json' as const, value: { ...base, [k]: v } })),
  // Overlapping host ports once the count is known: container 1 needs p+1, which the second spec has.
  fc
    .tuple(validBase, fc.integer({ min: 1, max: 60_000 }), fc.integer({ min: 2, max: 5 }))
    .map(([base, p, n]) => ({ kind: 'json' as const, value: { ...base, starting_ports: [p, p + 1], containers_per: { server: n } } })),
  // Not an object.
  fc
    .oneof(fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }), fc.string(), fc.integer(), fc.constant(null), fc.boolean())
    .map((v) => ({ kind: 'json' as const, value: v })),
  // Not JSON: a valid body cut short (or with a stray byte).
  fc
    .tuple(validBase, fc.nat(), fc.constantFrom('', '}', ',', '\u0000', "'"))
    .map(([base, cut, tail]) => {
      const text = JSON.stringify(base);
      return { kind: 'text' as const, text: text.slice(0, 1 + (cut % (text.length - 1))) + tail };
    })
    .filter((b) => {
      try {
        JSON.parse(b.text);
        return false;
      } catch {
        return true;
      }
    }),
);

interface Target {
  what: string;
  send(body: Body): Promise<RestResponse>;
}

const payload = (b: Body): string => (b.kind === 'json' ? JSON.stringify(b.value) : b.text);
const withName = (name: string, b: Body): Body =>
  b.kind === 'json' && typeof b.value === 'object' && b.value !== null && !Array.isArray(b.value) ? { kind: 'json', value: { name, ...b.value } } : b;

function targets(fresh: () => string): fc.Arbitrary<Target> {
  const call = (method: string, path: string) => (b: Body) => h.rest.call(method, path, { body: payload(b) });
  return fc.oneof(
    fc.constant({ what: 'POST /api/v2/apps/<new>', send: (b: Body) => call('POST', `/api/v2/apps/${fresh()}`)(b) }),
    fc.constant({ what: 'POST /api/v2/apps/steady (exists)', send: call('POST', '/api/v2/apps/steady') }),
    fc.constant({ what: 'PATCH /api/v2/apps/steady/update', send: call('PATCH', '/api/v2/apps/steady/update') }),
    fc.constant({ what: 'PUT /api/v2/apps/steady/update', send: call('PUT', '/api/v2/apps/steady/update') }),
    fc.constant({ what: 'POST /api/v2/apps/steady/update', send: call('POST', '/api/v2/apps/steady/update') }),
    fc.constant({ what: 'POST /trpc/apps.create', send: (b: Body) => call('POST', '/trpc/apps.create')(withName(fresh(), b)) }),
    fc.constant({ what: 'POST /trpc/apps.patch', send: (b: Body) => call('POST', '/trpc/apps.patch')(withName('steady', b)) }),
  );
}

function problem(r: RestResponse): string | null {
  if (r.status < 400 || r.status > 499) return `status ${r.status}`;
  if (!r.json || typeof r.body !== 'object' || r.body === null || Array.isArray(r.body)) return `not a JSON object: ${r.text.slice(0, 200)}`;
  if (/\bat .*\.(ts|js):\d+/.test(r.text)) return 'a stack trace in the body';
  return null;
}

report.case(
  test,
  'bad input',
  'bad input: explicit cases and 1,000 generated payloads',
  "malformed JSON, wrong types, unknown fields, an oversized body, names with dots, spaces, *, >, slashes or unicode, ports out of range, duplicate ports, then 1,000 fast-check payloads over REST and tRPC: each a 4xx with a JSON object, never a 5xx; apps, histories, rollouts and every host's containers unchanged",
  async (r) => {
    let t = Date.now();
    await h.rest.expect(200, 'POST', '/api/v2/apps/steady', { body: { docker_image: ECHO, starting_ports: [{ '8300': '80' }], env_vars: { S: '1' } } });
    r.converged(
      'create steady',
      await waitConverged(
        h.hosts,
        'steady',
        onHosts(
          h.hosts,
          h.hosts.map((x) => x.name),
          { count: 1, revision: 1, ports: [8300], env: { S: '1' } },
        ),
        { since: t },
      ),
    );
    const before = await snapshot();
    const failures: string[] = [];
    const check = (what: string, res: RestResponse, expect?: (res: RestResponse) => string | null) => {
      const p = problem(res) ?? expect?.(res) ?? null;
      if (p) failures.push(`${what}: ${p}`);
    };
    const hasError = (field: string) => (res: RestResponse) => {
      const errors = (res.body as { errors?: Record<string, unknown> }).errors ?? {};
      return Object.keys(errors).some((k) => k.startsWith(field)) ? null : `no error naming ${field}: ${res.text.slice(0, 200)}`;
    };

    // Explicit cases.
    check('malformed JSON (create)', await h.rest.call('POST', '/api/v2/apps/fresh', { body: '{"docker_image": ' }));
    check('malformed JSON (patch)', await h.rest.call('PATCH', '/api/v2/apps/steady/update', { body: '{bad' }), (res) =>
      (res.body as { missing_parameters?: unknown }).missing_parameters === true ? null : 'no missing_parameters',
    );
    check('malformed JSON (tRPC)', await h.rest.call('POST', '/trpc/apps.create', { body: '{' }));
    check('malformed tRPC query input', await h.rest.call('GET', `/trpc/apps.get?input=${encodeURIComponent('{"name":')}`));
    check('empty patch', await h.rest.call('PATCH', '/api/v2/apps/steady/update', { body: {} }));
    check('wrong type: docker_image', await h.rest.call('POST', '/api/v2/apps/fresh', { body: { docker_image: 42 } }), hasError('docker_image'));
    check('wrong type: running', await h.rest.call('PATCH', '/api/v2/apps/steady/update', { body: { running: 'yes' } }), hasError('running'));
    check('wrong type: env_vars', await h.rest.call('PUT', '/api/v2/apps/steady/update', { body: { env_vars: 'A=1' } }), hasError('env_vars'));
    check('unknown field', await h.rest.call('POST', '/api/v2/apps/fresh', { body: { docker_image: ECHO, colour: 'red' } }), hasError('colour'));
    check('unknown field (patch)', await h.rest.call('PATCH', '/api/v2/apps/steady/update', { body: { env_vars: {}, replicas: 3 } }), hasError('replicas'));
    const big = await h.rest.call('POST', '/api/v2/apps/fresh', { body: { docker_image: ECHO, env_vars: { BIG: 'x'.repeat(2 * 1024 * 1024) } } });
    check('oversized body', big, (res) => (res.status === 413 ? null : `status ${res.status}, want 413`));
    for (const name of INVALID_NAMES) {
      const path = `/api/v2/apps/${encodeURIComponent(name)}`;
      check(`name ${JSON.stringify(name)} (create)`, await h.rest.call('POST', path, { body: { docker_image: ECHO } }));
      check(`name ${JSON.stringify(name)} (get)`, await h.rest.call('GET', path));
      check(`name ${JSON.stringify(name)} (tRPC create)`, await h.rest.call('POST', '/trpc/apps.create', { body: { name, docker_image: ECHO } }));
    }
    check('raw slash in name', await h.rest.call('POST', '/api/v2/apps/a/b', { body: { docker_image: ECHO } }));
    for (const port of [0, -1, 65_536, 80.5]) {
      check(
        `port ${port}`,
        await h.rest.call('POST', '/api/v2/apps/fresh', { body: { docker_image: ECHO, starting_ports: [port] } }),
        hasError('starting_ports'),
      );
      check(
        `port map ${port}`,
        await h.rest.call('PATCH', '/api/v2/apps/steady/update', { body: { starting_ports: [{ [String(port)]: '80' }] } }),
        hasError('starting_ports'),
      );
    }
    check(
      'port map to 70000',
      await h.rest.call('POST', '/api/v2/apps/fresh', { body: { docker_image: ECHO, starting_ports: [{ '8080': '70000' }] } }),
      hasError('starting_ports'),
    );
    check(
      'duplicate ports',
      await h.rest.call('POST', '/api/v2/apps/fresh', { body: { docker_image: ECHO, starting_ports: [8080, 8080] } }),
      hasError('starting_ports'),
    );
    check(
      'duplicate ports (map and plain)',
      await h.rest.call('PATCH', '/api/v2/apps/steady/update', { body: { starting_ports: [{ '8080': '80' }, 8080] } }),
      hasError('starting_ports'),
    );
    check(
      'ports overlapping across containers',
      await h.rest.call('POST', '/api/v2/apps/fresh', { body: { docker_image: ECHO, starting_ports: [8080, 8081], containers_per: { server: 2 } } }),
      hasError('starting_ports'),
    );
    check('exists already', await h.rest.call('POST', '/api/v2/apps/steady', { body: { docker_image: ECHO } }), (res) =>
      res.status === 403 && (res.body as { app_exists?: boolean }).app_exists === true ? null : 'want 403 app_exists',
    );
    for (const revision of [0, -1, 1.5, '1', null, 999]) {
      check(`rollback to ${JSON.stringify(revision)}`, await h.rest.call('POST', '/api/v2/apps/steady/rollback', { body: { revision } }));
    }
    check('rollout id not a uuid', await h.rest.call('GET', '/api/v2/rollouts/not-a-uuid'));
    check('unknown rollout', await h.rest.call('GET', '/api/v2/rollouts/00000000-0000-4000-8000-000000000000'));
    check('history limit out of range', await h.rest.call('GET', '/api/v2/apps/steady/history?limit=0'));
    check('hosts filter', await h.rest.call('GET', '/api/v2/hosts?status=sideways'));
    assert.equal(failures, [], failures.join('\n'));

    // A thousand generated payloads.
    let n = 0;
    const fresh = () => `fresh-${n}`;
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 6, arbitrary: fc.tuple(targets(fresh), poisonedConfig) },
          // Any JSON at all, to a route whose name is invalid.
          {
            weight: 1,
            arbitrary: fc.tuple(
              fc.constantFrom(...INVALID_NAMES).map((name) => ({
                what: `POST /api/v2/apps/${name}`,
                send: (b: Body) => h.rest.call('POST', `/api/v2/apps/${encodeURIComponent(name)}`, { body: payload(b) }),
              })),
              fc.jsonValue().map((v) => ({ kind: 'json' as const, value: v })),
            ),
          },
          // Rollback to something that is not a revision.
          {
            weight: 1,
            arbitrary: fc.tuple(
              fc.constant({
                what: 'POST /api/v2/apps/steady/rollback',
                send: (b: Body) => h.rest.call('POST', '/api/v2/apps/steady/rollback', { body: payload(b) }),
              }),
              fc
                .oneof(fc.integer({ max: 0 }), fc.double({ noInteger: true }), fc.string(), fc.constant(null), fc.integer({ min: 2 }))
                .map((v) => ({ kind: 'json' as const, value: { revision: v } })),
            ),
          },
        ),
        async ([target, body]) => {
          n += 1;
          const res = await target.send(body);
          seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
          const p = problem(res);
          if (p) throw new Error(`${target.what} ${payload(body).slice(0, 300)} -> ${p}`);
        },
      ),
      { numRuns: 1000 },
    );
    assert.is(n, 1000);
    assert.equal(await snapshot(), before, 'stored state and hosts unchanged');
    console.log(`bad input: statuses ${JSON.stringify(Object.fromEntries(seen))}`);
    // The API still works after all of it.
    t = Date.now();
    const ok = await h.rest.expect(202, 'PATCH', '/api/v2/apps/steady/update', { body: { env_vars: { S: '2' } } });
    r.converged(
      'a valid change afterwards',
      await waitConverged(
        h.hosts,
        'steady',
        onHosts(
          h.hosts,
          h.hosts.map((x) => x.name),
          { count: 1, revision: 2, ports: [8300], env: { S: '2' } },
        ),
        { since: t },
      ),
    );
    await waitApplied(
      h,
      rolloutIdOf(ok),
      h.hosts.map((x) => x.name),
    );
    assert.ok((await progressOf(h, rolloutIdOf(ok))).complete);
  },
);

report.case(
  test,
  'scenario',
  'host reports from every host, paged and filtered',
  'each host sends usage samples (CPU, memory, the engine data root, its containers); GET /api/v2/reports pages them by last_id with page_size, without a report twice or out of order; hostname= keeps one host; report_creation_time with gt/lte splits them; updated=True only the reports after a revision change; a bad parameter is a 400 naming it; nebula hosts get shows the latest usage',
  async () => {
    type Page = {
      data: Array<{
        _id: { $oid: string };
        hostname: string;
        report_creation_time: number;
        updated: boolean;
        apps_containers: unknown[];
        memory_usage: { total: number };
      }> | null;
      last_id: { $oid: string } | null;
    };
    const hosts = h.hosts.map((x) => x.name);
    // Two samples from every host.
    await waitFor(async () => {
      for (const name of hosts) {
        const p = await h.rest.expect<Page>(200, 'GET', `/api/v2/reports?hostname=${name}&page_size=2`);
        if ((p.data?.length ?? 0) < 2) return false;
      }
      return true;
    }, 'two reports from every host');
    const seen: string[] = [];
    let last: string | null = null;
    for (let page = 0; page < 50; page++) {
      const p: Page = await h.rest.expect<Page>(200, 'GET', `/api/v2/reports?page_size=3${last ? `&last_id=${last}` : ''}`);
      if (p.data === null) {
        assert.is(p.last_id, null, 'an empty page has no last_id');
        break;
      }
      assert.ok(p.data.length <= 3);
      for (const r of p.data) seen.push(r._id.$oid);
      last = p.last_id!.$oid;
      assert.is(last, p.data.at(-1)!._id.$oid);
    }
    assert.ok(seen.length >= 2 * hosts.length, `${seen.length} reports paged`);
    assert.equal([...seen].sort(), seen, 'in id order');
    assert.is(new Set(seen).size, seen.length, 'none twice');
    const one = await h.rest.expect<Page>(200, 'GET', `/api/v2/reports?hostname=${hosts[0]}&page_size=1000`);
    assert.ok(one.data!.every((r) => r.hostname === hosts[0]));
    const first = one.data![0]!;
    assert.ok(first.memory_usage.total > 0, 'memory figures');
    const t = first.report_creation_time;
    const after = await h.rest.expect<Page>(
      200,
      'GET',
      `/api/v2/reports?hostname=${hosts[0]}&page_size=1000&report_creation_time=${t}&report_creation_time_filter=gt`,
    );
    const upTo = await h.rest.expect<Page>(
      200,
      'GET',
      `/api/v2/reports?hostname=${hosts[0]}&page_size=1000&report_creation_time=${t}&report_creation_time_filter=lte`,
    );
    assert.ok((after.data ?? []).every((r) => r.report_creation_time > t));
    assert.ok((upTo.data ?? []).every((r) => r.report_creation_time <= t));
    const updated = await h.rest.expect<Page>(200, 'GET', '/api/v2/reports?updated=True&page_size=1000');
    assert.ok((updated.data ?? []).every((r) => r.updated));
    const bad = await h.rest.expect<{ errors: Record<string, unknown> }>(400, 'GET', '/api/v2/reports?report_creation_time_filter=sometimes');
    assert.ok('report_creation_time_filter' in bad.errors, JSON.stringify(bad));
    const shown = await h.cli(['hosts', 'get', hosts[0]!]);
    assert.is(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /memory/i);
  },
);

async function waitFor(ok: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out: ${what}`);
}

test.run();
