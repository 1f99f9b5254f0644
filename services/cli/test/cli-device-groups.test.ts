import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine, USAGE } from '../src/cli.ts';
import { ADMIN, type CliResult, nebula, type Stack, startStack, suffix } from './stack.ts';

/**
 * `nebula device-groups ...` (alias dg) and `nebula prune` as a child process against a running API:
 * create, update (lists replaced, names added and removed), get, info, prune, delete; --wait follows
 * the group's rollout to the end (a host's result written as the notifier writes it); the API's
 * refusals (a missing app, an app a group names) as exit 1 with its reason; bad flags refused before
 * anything is sent.
 */
const test = suite('cli device groups');
let stack: Stack;
let admin: Record<string, string>;
const s = suffix();
const [web, db, job, group] = [`web-${s}`, `db-${s}`, `job-${s}`, `edge-${s}`];

async function run(args: string[]): Promise<CliResult> {
  return nebula(args, admin);
}

async function ok(args: string[]): Promise<CliResult> {
  const r = await run(args);
  assert.is(r.code, 0, `nebula ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

test.before(async () => {
  stack = await startStack();
  admin = { NEBULA_URL: stack.api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
  for (const app of [web, db]) {
    const r = await fetch(`${stack.api.url}/api/v2/apps/${app}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}` },
      body: JSON.stringify({ docker_image: 'nginx' }),
    });
    assert.is(r.status, 200);
  }
  await ok(['cron', 'create', job, '--schedule', '*/5 * * * *', '--image', 'busybox']);
});
test.after(async () => {
  await stack?.close();
});

test('command line: the commands, the dg alias, nebula prune, and their flags checked before anything is sent', () => {
  const c = parseCommandLine(['dg', 'create', 'g1', '--apps', 'a,b', '--cron-jobs', 'j']);
  assert.ok(c !== 'help');
  assert.equal([c.command, c.args.group, c.values.apps, c.values['cron-jobs']], ['device-groups create', 'g1', 'a,b', 'j']);
  const u = parseCommandLine(['device-groups', 'update', 'g1', '--add-app', 'x', '--add-app', 'y', '--remove-app', 'z', '--wait']);
  assert.ok(u !== 'help');
  assert.equal([u.values['add-app'], u.values['remove-app'], u.values.wait], [['x', 'y'], ['z'], true]);
  const p = parseCommandLine(['prune', '--wait', '--timeout', '30s']);
  assert.ok(p !== 'help');
  assert.equal([p.command, p.timeoutMs], ['prune', 30_000]);
  for (const [args, msg] of [
    [['device-groups', 'update', 'g1'], /needs --apps, --cron-jobs, --add-app/],
    [['device-groups', 'create', 'g1', '--apps', 'a b'], /--apps: "a b" is not a name/],
    [['device-groups', 'get'], /needs <group>/],
    [['device-groups', 'get', 'g1', '--apps', 'a'], /does not take --apps/],
    [['prune', 'g1'], /takes no arguments/],
    [['dg', 'fly'], /unknown command "device-groups fly"/],
  ] as const) {
    assert.throws(() => parseCommandLine([...args]), msg);
  }
  // The help says which "groups" is which.
  assert.match(USAGE, /device-groups \(alias dg;[^)]*not `groups`, which is user groups\)/s);
});

test('create, get, info, update (replace, add, remove), prune, delete; JSON for scripts', async () => {
  const created = await ok(['dg', 'create', group, '--apps', web, '--cron-jobs', job]);
  assert.match(created.stdout, new RegExp(`device group ${group}: created \\(device_group_id 1, prune_id 1; 0 host\\(s\\) expected\\); rollout [0-9a-f-]{36}`));
  const got = JSON.parse((await ok(['dg', 'get', group, '--json'])).stdout) as { apps: string[]; cron_jobs: string[]; device_group_id: number };
  assert.equal([got.apps, got.cron_jobs, got.device_group_id], [[web], [job], 1]);
  const info = await ok(['device-groups', 'info', group]);
  assert.match(info.stdout, new RegExp(`${web}\\s+nginx`));
  assert.match(info.stdout, new RegExp(`${job}\\s+\\*/5 \\* \\* \\* \\* \\(UTC\\)\\s+busybox`));

  const added = JSON.parse((await ok(['dg', 'update', group, '--add-app', db, '--json'])).stdout) as {
    apps: string[];
    device_group_id: number;
    rollout_id: string;
  };
  assert.equal([added.apps, added.device_group_id], [[web, db], 2]);
  const removed = JSON.parse((await ok(['dg', 'update', group, '--remove-app', web, '--cron-jobs', '', '--json'])).stdout) as {
    apps: string[];
    cron_jobs: string[];
  };
  assert.equal([removed.apps, removed.cron_jobs], [[db], []]);
  const list = await ok(['dg', 'list']);
  assert.match(list.stdout, new RegExp(`${group}\\s+${db}\\s+-\\s+3\\s+1`));

  assert.match((await ok(['dg', 'prune', group])).stdout, /prune requested \(device_group_id 3, prune_id 2/);
  const all = JSON.parse((await ok(['prune', '--json'])).stdout) as { prune_ids: Record<string, number> };
  assert.is(all.prune_ids[group], 3);

  // The API's refusals: exit 1, with its reason.
  const missing = await run(['dg', 'update', group, '--add-app', `nope-${s}`]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /app_exists|does not exist/);
  const named = await run(['apps', 'delete', db]);
  assert.is(named.code, 1);
  assert.match(named.stderr, new RegExp(`app ${db} is in device groups ${group}: remove it from them first`));

  assert.match((await ok(['dg', 'delete', group])).stdout, /deleted/);
  const gone = await run(['dg', 'get', group]);
  assert.is(gone.code, 1);
});

test("--wait follows the group's rollout: done when the group's hosts have applied it", async () => {
  const g = `wait-${s}`;
  await stack.db
    .insertInto('hosts')
    .values({
      id: `${g}-h1`,
      apps: [],
      running: '[]',
      cores: 1,
      memory_mb: 64,
      worker_version: 't',
      heartbeat_interval_seconds: 5,
      last_seen: new Date(),
      device_group: g,
    })
    .execute();
  const cli = run(['dg', 'create', g, '--apps', web, '--wait', '--timeout', '20s']);
  // The notifier writes the host's GroupResult into rollout_hosts; here the test does.
  const rollout = await waitFor(
    'the group rollout',
    async () => (await stack.db.selectFrom('rollouts').select('id').where('device_group', '=', g).executeTakeFirst())?.id ?? false,
    10_000,
    100,
  );
  await stack.db
    .insertInto('rollout_hosts')
    .values({
      rollout_id: rollout,
      host: `${g}-h1`,
      status: 'applied',
      error: null,
      image_digest: null,
      containers: '[]',
      pull_ms: 0,
      apply_ms: 5,
      reported_at: new Date(),
    })
    .execute();
  const r = await cli;
  assert.is(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stdout, /1\/1/);
  // Nobody follows a group: the rollout ends with no host (exit 3, as for an app).
  const empty = await run(['dg', 'create', `none-${s}`, '--wait', '--timeout', '10s']);
  assert.is(empty.code, 3, empty.stderr);
});

test.run();
