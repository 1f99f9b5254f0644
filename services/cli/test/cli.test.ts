import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN, nebula, type Stack, startStack, suffix } from './stack.ts';

/**
 * The nebula command as a child process against a running API, with a notifier and three workers
 * (in-memory runtime) applying what it sends: output for people and for scripts, --wait, exit codes.
 */
const test = suite('cli');
let stack: Stack;
let env: Record<string, string>;
let dir: string;
const app = `web-${suffix()}`;
const hosts = [0, 1, 2].map((i) => `${app}-h${i}`);

const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

async function ok(args: string[], extra: Record<string, string> = {}) {
  const r = await nebula(args, { ...env, ...extra });
  assert.is(r.code, 0, `nebula ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function json<T = Record<string, unknown>>(args: string[]): Promise<T> {
  const r = await ok([...args, '--json']);
  return JSON.parse(r.stdout) as T;
}

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nebula-cli-'));
  stack = await startStack();
  env = { NEBULA_URL: stack.api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
  // img:2 is missing from the last host's registry: its pull fails there.
  for (const h of hosts) await stack.startWorker(h, [app], h === hosts[2] ? ['img:1'] : ['img:1', 'img:2']);
  await waitFor(
    'three hosts online',
    async () => {
      const r = await nebula(['hosts', 'list', '--app', app, '--status', 'online', '--json'], env);
      return r.code === 0 && (JSON.parse(r.stdout) as { hosts: unknown[] }).hosts.length === 3;
    },
    15_000,
    200,
  );
});

test.after(async () => {
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('usage errors: exit 2 with a message, nothing sent', async () => {
  for (const args of [
    [],
    ['apps'],
    ['apps', 'get'],
    ['apps', 'fly', app],
    ['apps', 'list', '--bogus'],
    ['apps', 'create', app],
    ['hosts', 'list', '--status', 'asleep'],
    ['apps', 'history', app, '--limit', 'x'],
    ['apps', 'get', app, 'extra'],
    ['rollouts', 'get', 'x', '--wait'],
    ['apps', 'rollback', app, 'one'],
  ]) {
    const r = await nebula(args, env);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.code} ${r.stderr}`);
    assert.match(r.stderr, /^error: /, args.join(' '));
  }
  const help = await nebula(['--help'], env);
  assert.is(help.code, 0);
  assert.match(help.stdout, /rollouts watch <id>/);
  const badUrl = await nebula(['apps', 'list'], { NEBULA_URL: 'not a url' });
  assert.is(badUrl.code, 2);
});

test('apps create -f YAML --wait: returns once every host applied it, through the bin wrapper', async () => {
  const yaml = file('web.yaml', `# the app\ndocker_image: img:1\ncontainers_per:\n  server: 2\nenv_vars:\n  MODE: test\n`);
  const r = await nebula(['apps', 'create', app, '-f', yaml, '--wait'], env, { bin: true });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${app}: created, revision 1; rollout [0-9a-f-]{36}`));
  assert.match(r.stdout, /progress: \d\/3 hosts/);
  assert.match(r.stdout, /complete: 3\/3 hosts \(applied 3, failed 0, pending 0\)/);
  // Done means done: the API says so right after the command returned.
  const doc = await json<{ rollout: { complete: boolean; applied: number } }>(['apps', 'get', app]);
  assert.equal([doc.rollout.complete, doc.rollout.applied], [true, 3]);
});

test('apps list / get: a table for people, JSON for scripts', async () => {
  const list = await ok(['apps', 'list']);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0]!, /^NAME\s+REVISION\s+IMAGE\s+RUNNING\s+LATEST ROLLOUT$/);
  assert.ok(
    lines.some((l) => new RegExp(`^${app}\\s+1\\s+img:1\\s+yes\\s+3/3 complete$`).test(l)),
    list.stdout,
  );
  assert.ok((await json<{ apps: string[] }>(['apps', 'list'])).apps.includes(app));
  const get = await ok(['apps', 'get', app]);
  assert.match(get.stdout, /docker_image:\s+img:1/);
  assert.match(get.stdout, /rollout:\s+[0-9a-f-]{36} create: 3\/3 complete/);
  const doc = await json<{ app_name: string; env_vars: Record<string, string>; containers_per: Record<string, number> }>(['apps', 'get', app]);
  assert.equal([doc.app_name, doc.env_vars, doc.containers_per], [app, { MODE: 'test' }, { server: 2 }]);
});

test('apps update: merge by default, --replace replaces; JSON from stdin; actions; history', async () => {
  const merged = await json<{ app_id: number; env_vars: Record<string, string>; containers_per: Record<string, number> }>([
    'apps',
    'update',
    app,
    '-f',
    file('patch.json', '{"env_vars": {"MODE": "prod"}}'),
  ]);
  assert.equal([merged.app_id, merged.env_vars, merged.containers_per], [2, { MODE: 'prod' }, { server: 2 }]);
  // The output of `apps get --json` can be edited and sent back as it is.
  const got = (await ok(['apps', 'get', app, '--json'])).stdout.replace('"server": 2', '"server": 1');
  const back = await nebula(['apps', 'update', app, '-f', '-', '--replace', '--json'], env, { stdin: got });
  assert.is(back.code, 0, back.stderr);
  assert.equal((JSON.parse(back.stdout) as { containers_per: object }).containers_per, { server: 1 });
  const stop = await ok(['apps', 'stop', app]);
  assert.match(stop.stdout, new RegExp(`^${app}: stopped, revision 4; rollout [0-9a-f-]{36}`));
  assert.match(stop.stderr, /follow it: nebula rollouts watch/);
  const start = await json<{ running: boolean; app_id: number }>(['apps', 'start', app]);
  assert.equal([start.running, start.app_id], [true, 5]);
  const rb = await ok(['apps', 'rollback', app, '1', '--wait']);
  assert.match(rb.stdout, /rolled back to revision 1, revision 6/);
  assert.match(rb.stdout, /complete: 3\/3 hosts/);
  const history = await ok(['apps', 'history', app, '--limit', '3']);
  const rows = history.stdout.trim().split('\n');
  assert.match(rows[0]!, /^REVISION\s+ACTION\s+ACTOR\s+WHEN\s+ROLLOUT\s+CHANGES$/);
  assert.equal(
    rows.slice(1).map((l) => l.split(/\s+/).slice(0, 3)),
    [
      ['6', 'rollback', 'admin'],
      ['5', 'start', 'admin'],
      ['4', 'stop', 'admin'],
    ],
  );
  assert.match(history.stderr, new RegExp(`older: nebula apps history ${app} --before 4`));
  const older = await ok(['apps', 'history', app, '--limit', '3', '--before', '4']);
  assert.equal(
    older.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[0]),
    ['3', '2', '1'],
  );
  assert.not.match(older.stderr, /older:/);
  const h = await json<{ revisions: Array<{ app_id: number }> }>(['apps', 'history', app]);
  assert.equal(
    h.revisions.map((r) => r.app_id),
    [6, 5, 4, 3, 2, 1],
  );
});

test('a host that fails: --wait exits 3 and names the host and its error', async () => {
  const r = await nebula(['apps', 'update', app, '-f', file('img2.yaml', 'docker_image: img:2\n'), '--wait'], env);
  assert.is(r.code, 3, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, new RegExp(`failed: ${hosts[2]}: .*img:2`));
  assert.match(r.stdout, /complete with failures: 3\/3 hosts \(applied 2, failed 1, pending 0\)/);
  // The same rollout watched again, for a script: JSON lines, the last one complete, exit 3 again.
  const id = /rollout ([0-9a-f-]{36})/.exec(r.stdout)![1]!;
  const w = await nebula(['rollouts', 'watch', id, '--json'], env);
  assert.is(w.code, 3);
  const last = JSON.parse(w.stdout.trim().split('\n').at(-1)!) as { complete: boolean; failed: number; failures: Array<{ host: string }> };
  assert.equal([last.complete, last.failed, last.failures.map((f) => f.host)], [true, 1, [hosts[2]]]);
  const wait = await nebula(['apps', 'pull', app, '--wait', '--json'], env);
  assert.is(wait.code, 3, 'pull of img:2 fails on the same host');
  const doc = JSON.parse(wait.stdout.trim().split('\n').at(-1)!) as { app_id: number; rollout: { failed: number; complete: boolean } };
  assert.equal([doc.app_id, doc.rollout.failed, doc.rollout.complete], [8, 1, true]);
});

test('rollouts list / get and hosts list / get', async () => {
  const list = await ok(['rollouts', 'list', app, '--limit', '2']);
  const rows = list.stdout.trim().split('\n');
  assert.match(rows[0]!, /^ID\s+REVISION\s+ACTION\s+CREATED\s+HOSTS\s+APPLIED\s+FAILED\s+PENDING\s+STATE$/);
  assert.match(rows[1]!, /\s8\s+pull\s+.*3\/3\s+2\s+1\s+0\s+failed$/);
  assert.match(list.stderr, /older: nebula rollouts list .* --before [0-9a-f-]{36}/);
  const all = await json<{ rollouts: Array<{ revision: number }> }>(['rollouts', 'list', app, '--limit', '100']);
  assert.equal(
    all.rollouts.map((r) => r.revision),
    [8, 7, 6, 5, 4, 3, 2, 1],
  );
  const id = (await json<{ rollouts: Array<{ id: string }> }>(['rollouts', 'list', app])).rollouts[0]!.id;
  const get = await ok(['rollouts', 'get', id]);
  assert.match(get.stdout, /failures:\n\s+.*-h2: /);
  assert.match(get.stdout, new RegExp(`${hosts[2]}\\s+failed\\s+yes\\s+yes`));
  const hl = await ok(['hosts', 'list', '--app', app]);
  for (const h of hosts) assert.match(hl.stdout, new RegExp(`^${h}\\s+online\\s+${app}\\s+`, 'm'));
  const one = await json<{ id: string; status: string; cores: number }>(['hosts', 'get', hosts[0]!]);
  assert.equal([one.id, one.status, one.cores], [hosts[0], 'online', 2]);
  assert.match((await ok(['hosts', 'get', hosts[0]!])).stdout, /worker version:/);
  assert.not.match(get.stdout, /REGION/, 'only the hub: no table per region');

  // A host of region eu (its credential's) that reported without being expected: a table per region.
  const far = `${app}-eu`;
  await stack.db
    .insertInto('host_credentials')
    .values({ host_id: far, public_key: `U${far}`, apps: [app], region: 'eu', expires_at: new Date(Date.now() + 3_600_000) })
    .execute();
  await stack.db
    .insertInto('rollout_hosts')
    .values({ rollout_id: id, host: far, status: 'applied', containers: '[]', pull_ms: 0, apply_ms: 1, reported_at: new Date() })
    .execute();
  const byRegion = await ok(['rollouts', 'get', id]);
  assert.match(byRegion.stdout, /REGION\s+EXPECTED\s+APPLIED\s+FAILED\s+PENDING\s+OFFLINE\s+SUPERSEDED\s+JOINED/);
  assert.match(byRegion.stdout, /^hub\s+3\s+2\s+1\s+0\s+0\s+0\s+0$/m);
  assert.match(byRegion.stdout, /^eu\s+0\s+1\s+0\s+0\s+0\s+0\s+1$/m);
});

test('API errors: exit 1 with what is wrong (4xx body, refused credentials, unreachable API)', async () => {
  const missing = await nebula(['apps', 'get', `nope-${suffix()}`], env);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /error: app "nope-[0-9a-f]+" does not exist \(HTTP 403\)/);
  const bad = await nebula(['apps', 'create', `bad-${suffix()}`, '-f', file('bad.yaml', 'docker_image: img:1\nstarting_ports: [70000]\nbogus: 1\n')], env);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /HTTP 400/);
  assert.match(bad.stderr, /starting_ports\.0: /);
  assert.match(bad.stderr, /bogus: unknown field/);
  const noRollout = await nebula(['rollouts', 'watch', '00000000-0000-4000-8000-000000000000'], env);
  assert.is(noRollout.code, 1);
  assert.match(noRollout.stderr, /does not exist \(HTTP 403\)/);
  const noHost = await nebula(['hosts', 'get', `nope-${suffix()}`], env);
  assert.is(noHost.code, 1);
  assert.match(noHost.stderr, /is not known/);
  const notYaml = await nebula(['apps', 'create', `x-${suffix()}`, '-f', file('broken.yaml', 'docker_image: [unclosed\n')], env);
  assert.is(notYaml.code, 1);
  assert.match(notYaml.stderr, /neither JSON nor YAML/);
  const refused = await nebula(['apps', 'list'], { ...env, NEBULA_PASSWORD: 'wrong' });
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /refused the credentials \(401\)/);
  assert.not.match(refused.stderr + refused.stdout, /wrong/);
  const flags = await nebula(['apps', 'list', '--url', stack.api.url, '--user', ADMIN.user, '--password', ADMIN.password]);
  assert.is(flags.code, 0, flags.stderr);
  const down = await nebula(['apps', 'list'], { ...env, NEBULA_URL: 'http://127.0.0.1:9' });
  assert.is(down.code, 1);
  assert.match(down.stderr, /cannot reach the Nebula API at http:\/\/127\.0\.0\.1:9/);
});

test('delete --wait: the workers remove the containers', async () => {
  const r = await ok(['apps', 'delete', app, '--wait']);
  assert.match(r.stdout, new RegExp(`${app}: deleted; rollout`));
  assert.match(r.stdout, /complete/);
  for (const h of hosts) assert.is(stack.runtimes.get(h)!.all().length, 0, `${h} has no containers left`);
  const gone = await nebula(['apps', 'get', app], env);
  assert.is(gone.code, 1);
});

test.run();
