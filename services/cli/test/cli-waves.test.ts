import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN, nebula, type Stack, startStack, suffix } from './stack.ts';

/**
 * `apps update --waves/--bake/--max-failed/--no-waves`, `--dry-run` and the rollout commands as a
 * child process against a running API (PostgreSQL, a secured nats-server). The hosts of the dry run
 * are heartbeat rows only: no worker is needed to plan. What the commands do to a rollout in waves is
 * the end-to-end tests' part; here the rollout went all at once, which no command applies to.
 */
const test = suite('cli waves');
let stack: Stack;
let env: Record<string, string>;

async function run(args: string[], code = 0) {
  const r = await nebula(args, env);
  assert.is(r.code, code, `nebula ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function strategyOf(app: string): Promise<unknown> {
  return (JSON.parse((await run(['apps', 'get', app, '--json'])).stdout) as { rollout_strategy: unknown }).rollout_strategy;
}

test.before(async () => {
  stack = await startStack();
  env = { NEBULA_URL: stack.api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
});

test.after(async () => {
  await stack?.close();
});

test('apps update --waves --bake --max-failed sets the strategy; each flag alone changes its field; --no-waves clears it', async () => {
  const app = `web-${suffix()}`;
  const created = await nebula(['apps', 'create', app, '-f', '-'], env, { stdin: 'docker_image: nginx:1\n' });
  assert.is(created.code, 0, created.stderr);
  const noStrategy = await run(['apps', 'update', app, '--bake', '30s'], 2);
  assert.match(noStrategy.stderr, /give --waves too/);
  await run(['apps', 'update', app, '--waves', '5,25,100', '--bake', '30s', '--max-failed', '10%']);
  assert.equal(await strategyOf(app), {
    waves: [5, 25, 100],
    bake_seconds: 30,
    max_failed_percent: 10,
    max_failed_hosts: null,
    min_hosts_tried: 1,
    on_failure: 'rollback',
    host_timeout_seconds: 300,
    auto_promote: true,
  });
  await run(['apps', 'update', app, '--max-failed', '3']);
  const s = (await strategyOf(app)) as Record<string, unknown>;
  assert.equal([s.waves, s.bake_seconds, s.max_failed_percent, s.max_failed_hosts], [[5, 25, 100], 30, 10, 3]);
  const bad = await run(['apps', 'update', app, '--waves', '50,20'], 1);
  assert.match(bad.stderr, /rollout_strategy\.waves/);
  await run(['apps', 'update', app, '--no-waves']);
  assert.is(await strategyOf(app), null);
});

test("--dry-run prints each wave's hosts and changes nothing", async () => {
  const app = `api-${suffix()}`;
  const created = await nebula(['apps', 'create', app, '-f', '-'], env, { stdin: 'docker_image: nginx:1\n' });
  assert.is(created.code, 0, created.stderr);
  const hosts = ['a', 'b', 'c', 'd'].map((h) => `${app}-${h}`);
  await stack.db
    .insertInto('hosts')
    .values(
      hosts.map((id) => ({
        id,
        apps: [app],
        running: '[]',
        cores: 1,
        memory_mb: 256,
        worker_version: 'v',
        heartbeat_interval_seconds: 1,
        last_seen: new Date(),
      })),
    )
    .execute();
  const before = (await run(['apps', 'history', app, '--json'])).stdout;
  const r = await run(['apps', 'update', app, '--waves', '25,100', '--dry-run']);
  assert.match(r.stdout, /dry run of .*: nothing was changed; the change would go out in waves 25, 100% .* to 4 hosts/);
  assert.match(r.stdout, /wave 1 \(25%\): 1 host: /);
  assert.match(r.stdout, /wave 2 \(100%\): 3 hosts: /);
  const json = JSON.parse((await run(['apps', 'update', app, '--waves', '25,100', '--dry-run', '--json'])).stdout) as {
    plan: { waves: Array<{ hosts: string[] }> };
  };
  assert.equal(json.plan.waves.flatMap((w) => w.hosts).sort(), hosts);
  assert.is((await run(['apps', 'history', app, '--json'])).stdout, before, 'no revision was made');
  assert.is(await strategyOf(app), null);
});

test('rollout commands: refused with the state for a rollout that went all at once (exit 1, HTTP 409); an unknown one exit 1', async () => {
  const app = `job-${suffix()}`;
  const created = await nebula(['apps', 'create', app, '-f', '-', '--json'], env, { stdin: 'docker_image: nginx:1\n' });
  assert.is(created.code, 0, created.stderr);
  const id = (JSON.parse(created.stdout) as { rollout_id: string }).rollout_id;
  for (const args of [
    ['pause', id],
    ['resume', id],
    ['promote', id, '--full'],
    ['abort', id],
    ['retry', id],
  ]) {
    const r = await run(['rollouts', ...args], 1);
    assert.match(r.stderr, /\(HTTP 409\)/, r.stderr);
    assert.match(r.stderr, /"state":"(rolling|succeeded|failed)"/, r.stderr);
  }
  const missing = await run(['rollouts', 'pause', '00000000-0000-4000-8000-000000000000'], 1);
  assert.match(missing.stderr, /does not exist/);
  const usage = await run(['rollouts', 'pause', id, '--full'], 2);
  assert.match(usage.stderr, /does not take --full/);
});

test.run();
