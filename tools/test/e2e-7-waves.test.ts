import { createDb, sql } from '@nebula/db';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type Harness, harnessPerFile } from '../src/e2e/harness.ts';
import { echoAt, onHosts, waitConverged, watchAvailability } from '../src/e2e/observe.ts';
import { Report } from '../src/e2e/report.ts';
import { buildImage, ECHO, progressOf, pushAs, rolloutIdOf, sleep, waitApplied, waitProgress } from '../src/e2e/steps.ts';

/**
 * Rollouts in waves on five hosts, each its own engine: a canary that crashes stops at the canary and
 * is rolled back while the other hosts never stop answering; a good change through three waves with
 * bake time; pause, resume, promote, abort and retry; the controller killed in the middle of a wave;
 * a host offline during a rollout that catches up after it, and a host that joins in the middle.
 */
const test = suite('e2e rollouts in waves');
const report = new Report('tools/test/e2e-7-waves.test.ts');
const APPS = ['canary', 'waves', 'ctl', 'takeover', 'late'];
let h: Harness;
let all: string[] = [];
let CRASH = '';

harnessPerFile(test, report, 'e2e waves', { hosts: 5, apps: () => APPS, images: ['nebula/echo:1', ECHO] }, async (started) => {
  h = started;
  all = h.hosts.map((x) => x.name);
  CRASH = `127.0.0.1:5000/nebula/e2e-${h.runId}:crash`;
  await buildImage(CRASH, `FROM ${ECHO}\nENTRYPOINT ["/bin/false"]\n`);
  await pushAs(CRASH, CRASH);
});

const WAVES = [20, 60, 100];

/** Creates an app on every host, all at once, and waits until each runs it. */
async function create(app: string, port: number, v: string): Promise<void> {
  const t = Date.now();
  const res = await h.rest.expect(200, 'POST', `/api/v2/apps/${app}`, {
    body: { docker_image: ECHO, starting_ports: [{ [String(port)]: '80' }], containers_per: { server: 1 }, env_vars: { V: v } },
  });
  await waitConverged(h.hosts, app, onHosts(h.hosts, all, { count: 1, revision: 1, ports: [port], env: { V: v } }), { since: t });
  await waitApplied(h, rolloutIdOf(res), all);
}

/** The hosts of each wave, as the dry run of a change plans them (the stable order of the app). */
async function plannedWaves(app: string, body: Record<string, unknown>): Promise<string[][]> {
  const plan = await h.rest.expect<{ dry_run: boolean; plan: { waves: Array<{ hosts: string[] }> } }>(200, 'PATCH', `/api/v2/apps/${app}/update?dry_run=true`, {
    body,
  });
  assert.ok(plan.dry_run, 'a dry run says so');
  return plan.plan.waves.map((w) => w.hosts);
}

async function change(app: string, body: Record<string, unknown>): Promise<string> {
  return rolloutIdOf(await h.rest.expect(202, 'PATCH', `/api/v2/apps/${app}/update`, { body }));
}

const inState = (id: string, ...states: string[]) => waitProgress(h, id, `state ${states.join('|')}`, (p) => states.includes(p.state), 90_000);

async function versions(port: number): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const x of h.hosts) out[x.name] = (await echoAt(x, port))?.env.V ?? null;
  return out;
}

const only = (hosts: string[], v: string, other: string) => Object.fromEntries(all.map((n) => [n, hosts.includes(n) ? v : other]));

report.case(
  test,
  'fault',
  'a canary whose process exits at once stops at the canary and is rolled back',
  'waves 20/60/100, max_failed_hosts 1, on_failure rollback: the crashing image reaches the one canary host only, which puts its previous container back and reports failed; the rollout ends rolled_back with a rollback revision (history says why); the other four hosts answer on their port through the whole rollout and never see the image',
  async (r) => {
    await create('canary', 8600, '1');
    const strategy = { waves: WAVES, max_failed_hosts: 1, on_failure: 'rollback', bake_seconds: 0 };
    const [wave1] = await plannedWaves('canary', { docker_image: CRASH, rollout_strategy: strategy });
    assert.is(wave1?.length, 1, 'a fifth of five hosts: one canary');
    const others = all.filter((n) => !wave1!.includes(n));
    const t = Date.now();
    const watched = await watchAvailability(
      h.hosts.filter((x) => others.includes(x.name)),
      [8600],
      async () => {
        const id = await change('canary', { docker_image: CRASH, rollout_strategy: strategy });
        return inState(id, 'rolled_back', 'failed', 'succeeded', 'aborted');
      },
      100,
    );
    const p = watched.result;
    r.converged('canary failed and rolled back', Date.now() - t);
    assert.is(p.state, 'rolled_back', JSON.stringify(p));
    for (const n of others) assert.is(watched.maxDown[n], 0, `${n} never stopped answering`);
    assert.ok(watched.samples > 5, `polled through the rollout (${watched.samples} rounds)`);
    assert.is(p.waves[0]?.failed, 1, 'the canary failed');
    assert.is(p.waves[1]?.started_at ?? null, null, 'the second wave never started');
    assert.equal(
      p.failures.map((f) => f.host),
      wave1,
    );
    assert.match(p.abort_reason ?? '', /fail/i);
    assert.ok(p.rollback_rollout_id, 'a rollback revision was made');
    await waitApplied(h, p.rollback_rollout_id!, all, 60_000);
    assert.equal(await versions(8600), only([], '1', '1'), 'every host serves the old revision');
    const history = await h.rest.expect<{ revisions: Array<{ action: string; rollout_id: string; reason?: string | null }> }>(
      200,
      'GET',
      '/api/v2/apps/canary/history',
    );
    const rb = history.revisions[0]!;
    assert.is(rb.action, 'rollback');
    assert.is(rb.rollout_id, p.rollback_rollout_id);
    assert.match(rb.reason ?? '', new RegExp(p.id));
  },
);

report.case(
  test,
  'scenario',
  'a good change passes three waves with bake time, in order',
  'waves 20/60/100 (1, 2 and 2 hosts) with 2 s of bake: each wave starts after the one before it finished and baked; the hosts of a wave run the new revision while the later ones still run the old; then every host',
  async (r) => {
    await create('waves', 8610, '1');
    const strategy = { waves: WAVES, bake_seconds: 2 };
    const planned = await plannedWaves('waves', { env_vars: { V: '2' }, rollout_strategy: strategy });
    assert.equal(
      planned.map((w) => w.length),
      [1, 2, 2],
    );
    const t = Date.now();
    const id = await change('waves', { env_vars: { V: '2' }, rollout_strategy: strategy });
    // While the first wave bakes, only its host runs the new revision.
    const baking = await waitProgress(h, id, 'wave 1 applied', (p) => p.waves[0]?.applied === 1);
    assert.is(baking.wave, 1);
    assert.equal(await versions(8610), only(planned[0]!, '2', '1'));
    const p = await inState(id, 'succeeded', 'failed', 'rolled_back', 'aborted', 'paused');
    r.converged('three waves', Date.now() - t);
    assert.is(p.state, 'succeeded', JSON.stringify(p));
    assert.is(p.waves.length, 3);
    for (let k = 1; k < 3; k++) {
      const prev = p.waves[k - 1]!;
      const cur = p.waves[k]!;
      assert.ok(prev.finished_at && cur.started_at, `wave ${k} finished, wave ${k + 1} started`);
      assert.ok(Date.parse(cur.started_at!) >= Date.parse(prev.finished_at!), `wave ${k + 1} started after wave ${k} finished`);
      assert.ok(Date.parse(cur.started_at!) - Date.parse(prev.started_at!) >= 2000, `wave ${k} baked 2 s`);
    }
    assert.equal(await versions(8610), only(all, '2', '2'));
  },
);

async function command(id: string, what: string, status = 200, query = ''): Promise<unknown> {
  return h.rest.expect(status, 'POST', `/api/v2/rollouts/${id}/${what}${query}`);
}

report.case(
  test,
  'scenario',
  'pause, resume, promote, abort',
  'auto_promote false pauses after the canary; promote starts the second wave; pause holds it (a second pause is a 409 with a JSON reason); resume goes on; abort rolls back to the last good config on every host; a command on an ended rollout is a 409',
  async () => {
    await create('ctl', 8620, '1');
    const strategy = { waves: WAVES, auto_promote: false, bake_seconds: 30, on_failure: 'rollback' };
    const planned = await plannedWaves('ctl', { env_vars: { V: '3' }, rollout_strategy: strategy });
    const id = await change('ctl', { env_vars: { V: '3' }, rollout_strategy: strategy });
    let p = await inState(id, 'paused');
    assert.is(p.wave, 1);
    assert.is(p.waves[0]?.applied, 1);
    assert.equal(await versions(8620), only(planned[0]!, '3', '1'));
    await command(id, 'promote');
    p = await waitProgress(h, id, 'wave 2 applied', (q) => q.wave === 2 && q.waves[1]?.applied === 2);
    assert.is(p.state, 'rolling');
    assert.equal(await versions(8620), only([...planned[0]!, ...planned[1]!], '3', '1'));
    await command(id, 'pause');
    p = await progressOf(h, id);
    assert.is(p.state, 'paused');
    const again = (await command(id, 'pause', 409)) as { error?: string; state?: string };
    assert.is(again.state, 'paused', JSON.stringify(again));
    await command(id, 'resume');
    assert.is((await progressOf(h, id)).state, 'rolling');
    await command(id, 'abort');
    p = await inState(id, 'rolled_back');
    assert.ok(p.rollback_rollout_id);
    await waitApplied(h, p.rollback_rollout_id!, all, 60_000);
    assert.equal(await versions(8620), only([], '1', '1'));
    const ended = (await command(id, 'resume', 409)) as { state?: string };
    assert.is(ended.state, 'rolled_back');
    await command('00000000-0000-4000-8000-000000000000', 'pause', 403);
  },
);

report.case(
  test,
  'fault',
  'the controller killed in the middle of a wave',
  'the notifier (the rollout controller) is killed with SIGKILL while the first wave bakes and started again: the rollout goes on from where it was and succeeds; each wave was sent exactly once (one outbox message per wave and one final)',
  async (r) => {
    await create('takeover', 8630, '1');
    const strategy = { waves: WAVES, bake_seconds: 3 };
    const id = await change('takeover', { env_vars: { V: '4' }, rollout_strategy: strategy });
    await waitProgress(h, id, 'wave 1 applied', (p) => p.waves[0]?.applied === 1);
    await h.notifier.kill();
    await sleep(4000);
    await h.notifier.start();
    const t = Date.now();
    const p = await inState(id, 'succeeded', 'failed', 'rolled_back', 'aborted', 'paused');
    r.converged('after the takeover', Date.now() - t);
    assert.is(p.state, 'succeeded', JSON.stringify(p));
    assert.equal(await versions(8630), only(all, '4', '4'));
    const db = createDb(h.postgres.url, 1);
    try {
      const rows = await sql<{ msg_id: string }>`select msg_id from outbox where payload->>'rollout_id' = ${id} order by id`.execute(db);
      assert.equal(
        rows.rows.map((x) => x.msg_id),
        [`${id}:wave-1`, `${id}:wave-2`, `${id}:wave-3`, id],
      );
    } finally {
      await db.destroy();
    }
  },
);

report.case(
  test,
  'scenario',
  'a host offline during a rollout catches up after it; a host that joins in the middle waits for the end',
  'the last host in the order is offline when the rollout starts: its wave does not wait for it and it is not counted as failed; back online it runs the new revision. Another host serving no app joins the app while the rollout is paused: it runs the previous revision until the rollout succeeded, then the new one',
  async () => {
    await create('late', 8640, '1');
    const strategy = { waves: WAVES, auto_promote: false };
    const planned = await plannedWaves('late', { env_vars: { V: '5' }, rollout_strategy: strategy });
    const last = planned[2]!.at(-1)!;
    // The joiner: a host of the last wave leaves the app (its worker serves nothing), then comes back serving it.
    const joiner = planned[2]![0]!;
    assert.not.equal(last, joiner);
    await h.worker(last).stop();
    const joinerHost = h.hosts.find((x) => x.name === joiner)!;
    await h.worker(joiner).stop();
    // Serving every app but this one: its container of the app is removed, and the API no longer counts it.
    const away = h.extraWorker('worker-joiner-away', joinerHost, { APP_NAME: APPS.filter((a) => a !== 'late').join(',') });
    await away.start();
    await waitFor(async () => (await hostApps(joiner))?.includes('late') === false, `${joiner} no longer serves late`);
    await waitFor(async () => (await hostStatus(last)) === 'offline', `${last} offline`);
    const id = await change('late', { env_vars: { V: '5' }, rollout_strategy: strategy });
    let p = await inState(id, 'paused');
    // Rejoins mid-rollout, serving the app again: not a member, so it stays on the previous revision.
    await away.stop();
    const back = h.extraWorker('worker-joiner-back', joinerHost, {});
    await back.start();
    await sleep(3000);
    assert.is((await echoAt(joinerHost, 8640))?.env.V, '1', 'the joiner runs the previous revision during the rollout');
    await command(id, 'promote', 200, '?full=true');
    p = await inState(id, 'succeeded', 'failed', 'rolled_back', 'aborted');
    assert.is(p.state, 'succeeded', JSON.stringify(p));
    assert.is(p.failed, 0, 'the offline host is not a failure');
    await waitFor(async () => (await echoAt(joinerHost, 8640))?.env.V === '5', 'the joiner runs the new revision after the rollout');
    await h.worker(last).start();
    const lastHost = h.hosts.find((x) => x.name === last)!;
    await waitFor(async () => (await echoAt(lastHost, 8640))?.env.V === '5', 'the offline host catches up');
    await back.stop();
    await h.worker(joiner).start();
  },
);

async function hostApps(host: string): Promise<string[] | undefined> {
  const body = await h.rest.expect<{ hosts: Array<{ id: string; apps: string[] }> }>(200, 'GET', '/api/v2/hosts');
  return body.hosts.find((x) => x.id === host)?.apps;
}

async function hostStatus(host: string): Promise<string | undefined> {
  const body = await h.rest.expect<{ hosts: Array<{ id: string; status: string }> }>(200, 'GET', '/api/v2/hosts');
  return body.hosts.find((x) => x.id === host)?.status;
}

async function waitFor(ok: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await ok()) return;
    await sleep(250);
  }
  throw new Error(`timed out: ${what}`);
}

test.run();
