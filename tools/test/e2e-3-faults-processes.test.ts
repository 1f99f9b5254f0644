import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Harness, harnessPerFile } from '../src/e2e/harness.ts';
import { containersOn, echoAt, type HostExpectation, onHosts, waitConverged } from '../src/e2e/observe.ts';
import { Report } from '../src/e2e/report.ts';
import { createdSince, ECHO, hostStates, progressOf, rolloutIdOf, sleep, waitApplied, waitProgress } from '../src/e2e/steps.ts';

/**
 * Faults of the system's own processes: a worker killed mid-rollout, a host offline through three
 * updates, an API replica killed between commit and publish, the notifier stopped during a rollout.
 * Each ends with every host converged, every rollout accounted for, and nothing lost or doubled.
 */
const test = suite('e2e faults: processes');
const report = new Report('tools/test/e2e-3-faults-processes.test.ts');
const APPS = ['killed', 'away', 'outbox', 'quiet'];
let h: Harness;
let all: string[];

harnessPerFile(test, report, 'e2e faults (processes)', { apps: () => APPS, images: ['nebula/echo:1', ECHO] }, async (started) => {
  h = started;
  all = h.hosts.map((x) => x.name);
});

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
  'worker killed with SIGKILL mid-rollout, restarted',
  "a roll of 3 containers; host-2's worker killed while its containers run two revisions; restarted: every container on every host rolled, the rollout complete with 3 applied",
  async (r) => {
    await create('killed', 8100, 3, r);
    const victim = h.hosts[1]!;
    const t = Date.now();
    const roll = await h.rest.expect(202, 'POST', '/api/v2/apps/killed/roll');
    const mixed = await waitFor(
      `${victim.name} in the middle of the roll`,
      async () => {
        const cs = await containersOn(victim, 'killed');
        const revs = new Set(cs.filter((c) => c.state === 'running').map((c) => c.revision));
        return revs.has(2) && revs.has(1) ? cs : undefined;
      },
      20_000,
      30,
    );
    await h.worker(victim.name).kill();
    assert.ok(
      mixed.some((c) => c.revision === 1),
      'killed before the roll ended',
    );
    await sleep(500);
    await h.worker(victim.name).start();
    r.converged(
      'roll after the kill',
      await waitConverged(h.hosts, 'killed', everywhere({ count: 3, revision: 2, ports: [8100], env: { V: '1' } }), { since: t }),
    );
    await waitApplied(h, rolloutIdOf(roll), all);
  },
);

report.case(
  test,
  'fault',
  'host offline through three updates, then back',
  "host-3's worker killed; the API sees it offline and stops expecting it; three updates reach host-1/2 while host-3 keeps serving the old one; back, host-3 creates its container once, for the latest revision only (its engine's events), the older rollouts do not say it applied them",
  async (r) => {
    await create('away', 8200, 1, r);
    const away = h.hosts[2]!;
    await h.worker(away.name).kill();
    await waitFor(
      `${away.name} offline`,
      async () => (await h.rest.expect<{ status: string }>(200, 'GET', `/api/v2/hosts/${away.name}`)).status === 'offline',
      20_000,
      200,
    );
    const present = all.filter((n) => n !== away.name);
    const rollouts: string[] = [];
    for (const v of ['2', '3', '4']) {
      const t = Date.now();
      const res = await h.rest.expect(202, 'PATCH', '/api/v2/apps/away/update', { body: { env_vars: { V: v } } });
      rollouts.push(rolloutIdOf(res));
      r.converged(
        `update V=${v} (host-3 away)`,
        await waitConverged(
          h.hosts,
          'away',
          { ...onHosts(h.hosts, present, { count: 1, ports: [8200], env: { V: v } }), [away.name]: { count: 1, revision: 1, ports: [8200], env: { V: '1' } } },
          { since: t },
        ),
      );
      const p = await waitApplied(h, rolloutIdOf(res), present);
      assert.is(p.expected, 2, 'the offline host is not expected');
    }
    const back = Date.now();
    await h.worker(away.name).start();
    r.converged('host-3 back', await waitConverged(h.hosts, 'away', everywhere({ count: 1, revision: 4, ports: [8200], env: { V: '4' } }), { since: back }));
    await waitProgress(h, rollouts[2]!, 'host-3 applied the latest', (p) => hostStates(p)[away.name] === 'applied');
    assert.equal(await createdSince(away, 'away', back - 500), ['away-1'], 'one container created, once');
    for (const id of rollouts.slice(0, 2)) {
      const p = await progressOf(h, id);
      assert.ok(hostStates(p)[away.name] !== 'applied', `host-3 did not apply revision ${p.revision}: ${hostStates(p)[away.name]}`);
      assert.ok(p.complete);
    }
  },
);

/** How many revisions of an app the APPS stream holds (it keeps up to 64 per app). */
async function streamCount(app: string): Promise<number> {
  const nc = await connect(h.natsOptions('admin'));
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('APPS', { subjects_filter: `apps.${app}` });
    return info.state.subjects?.[`apps.${app}`] ?? 0;
  } finally {
    await nc.close();
  }
}

report.case(
  test,
  'fault',
  'API killed between commit and publish',
  'NATS paused; a change committed through the replica that publishes (answered 202, rollout not yet published); that replica killed with SIGKILL; NATS back: the other replica publishes it; every host applies it, creating its container once; the stream holds the revision once',
  async (r) => {
    await create('outbox', 8300, 1, r);
    const active = await waitFor(
      'the publishing replica',
      async () => {
        for (const [i] of h.apis.entries()) {
          const m = await h.rest.call('GET', '/metrics', { api: i });
          if (/^nebula_api_outbox_relay_active(\{[^}]*\})? 1$/m.test(m.text)) return i;
        }
        return undefined;
      },
      15_000,
      200,
    );
    const other = 1 - active;
    assert.is(await streamCount('outbox'), 1);
    await h.nats.pause();
    let t = 0;
    let rollout = '';
    try {
      t = Date.now();
      const res = await h.rest.expect(202, 'PATCH', '/api/v2/apps/outbox/update', { body: { env_vars: { V: '2' } }, api: active });
      rollout = rolloutIdOf(res);
      await sleep(300);
      const p = await h.rest.expect<{ published_at: string | null }>(200, 'GET', `/api/v2/rollouts/${rollout}`, { api: other });
      assert.is(p.published_at, null, 'committed, not yet published');
      await h.apis[active]!.kill();
    } finally {
      await h.nats.unpause();
    }
    r.converged(
      'change arrives',
      await waitConverged(h.hosts, 'outbox', everywhere({ count: 1, revision: 2, ports: [8300], env: { V: '2' } }), { since: t, timeoutMs: 60_000 }),
    );
    await waitApplied(h, rollout, all);
    // The killed replica's publish may have reached NATS before the pause took hold, so hosts can apply
    // the change before the other replica takes the relay over and marks the row published.
    await waitFor(
      'the rollout marked published',
      async () => {
        const p = await h.rest.expect<{ published_at: string | null }>(200, 'GET', `/api/v2/rollouts/${rollout}`, { api: other });
        return p.published_at !== null ? true : undefined;
      },
      20_000,
      200,
    );
    for (const x of h.hosts) assert.equal(await createdSince(x, 'outbox', t), ['outbox-1'], `${x.name} applied it once`);
    assert.is(await streamCount('outbox'), 2, 'revision 2 is in the stream once');
    await h.apis[active]!.start();
  },
);

report.case(
  test,
  'fault',
  'notifier stopped during a rollout, restarted',
  'notifier stopped (SIGTERM); a change converges on every host while progress shows nothing applied; notifier back: it catches up and the rollout ends complete with 3 applied',
  async (r) => {
    await create('quiet', 8400, 2, r);
    await h.notifier.stop();
    const t = Date.now();
    const res = await h.rest.expect(202, 'PATCH', '/api/v2/apps/quiet/update', { body: { env_vars: { V: '2' } } });
    const id = rolloutIdOf(res);
    r.converged(
      'hosts, notifier down',
      await waitConverged(h.hosts, 'quiet', everywhere({ count: 2, revision: 2, ports: [8400], env: { V: '2' } }), { since: t }),
    );
    assert.is((await progressOf(h, id)).applied, 0, 'nothing written while the notifier is down');
    const back = Date.now();
    await h.notifier.start();
    r.converged('progress after the restart', await waitApplied(h, id, all).then(() => Date.now() - back));
    for (const x of h.hosts) assert.is((await echoAt(x, 8401))?.env.V, '2');
  },
);

test.run();
