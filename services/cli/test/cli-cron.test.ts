import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/cli.ts';
import { cronBody } from '../src/commands/cron.ts';
import { ADMIN, type CliResult, nebula, type Stack, startStack, suffix } from './stack.ts';

/**
 * `nebula cron ...` as a child process against a running API: create from flags and from a file on
 * stdin (the output of `cron get --json` goes back in), update (merge and --replace), runs, delete;
 * the API's refusals (a bad schedule) as exit 1 with its reason; bad flags refused before anything is sent.
 */
const test = suite('cli cron');
let stack: Stack;
let admin: Record<string, string>;
const job = `nightly-${suffix()}`;

async function run(args: string[], stdin?: string): Promise<CliResult> {
  return nebula(args, admin, stdin === undefined ? {} : { stdin });
}

async function ok(args: string[], stdin?: string): Promise<CliResult> {
  const r = await run(args, stdin);
  assert.is(r.code, 0, `nebula ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

test.before(async () => {
  stack = await startStack();
  admin = { NEBULA_URL: stack.api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
});
test.after(async () => {
  await stack?.close();
});

test('command line: the cron commands and their flags, checked before anything is sent', () => {
  const c = parseCommandLine(['cron', 'create', 'j1', '--schedule', '*/5 * * * *', '--image', 'busybox:1.36']);
  assert.ok(c !== 'help');
  assert.equal([c.command, c.args.job, c.values.schedule, c.values.image], ['cron create', 'j1', '*/5 * * * *', 'busybox:1.36']);
  const u = parseCommandLine(['cron', 'update', 'j1', '-f', '-', '--replace']);
  assert.ok(u !== 'help');
  assert.equal([u.command, u.values.file, u.values.replace], ['cron update', '-', true]);
  const r = parseCommandLine(['cron', 'runs', 'j1', '--limit', '5']);
  assert.ok(r !== 'help');
  assert.is(r.values.limit, '5');
  for (const [args, msg] of [
    [['cron', 'create', 'j1'], /needs -f <file>.*or --schedule and --image/],
    [['cron', 'create', 'j1', '--schedule', '* * * * *'], /needs -f <file>.*or --schedule and --image/],
    [['cron', 'update', 'j1'], /needs -f <file>.*--schedule or --image/],
    [['cron', 'update', 'j1', '--schedule', '* * * * *', '--replace'], /--replace makes the body the whole config/],
    [['cron', 'create', 'j1', '--schedule', ' ', '--image', 'x'], /--schedule must not be empty/],
    [['cron', 'delete', 'j1', '--image', 'x'], /does not take --image/],
    [['cron', 'runs', 'j1', '--limit', '0'], /--limit must be a whole number/],
    [['cron', 'get'], /needs <job>/],
    [['cron', 'fly'], /unknown command "cron fly"/],
    [['apps', 'create', 'web', '--schedule', '* * * * *', '-f', 'x'], /does not take --schedule/],
  ] as const) {
    assert.throws(() => parseCommandLine([...args]), msg);
  }
  assert.equal(
    cronBody({ docker_image: 'a', schedule: 'x', running: false }, { image: 'b' }),
    { docker_image: 'b', schedule: 'x', running: false },
    'flags win',
  );
});

test('create from flags, get, update from a file on stdin, --replace, runs, delete', async () => {
  const created = await ok(['cron', 'create', job, '--schedule', '0 3 * * *', '--image', 'busybox:1.36']);
  assert.match(created.stdout, new RegExp(`^cron job ${job} created \\(cron_job_id 1, schedule "0 3 \\* \\* \\*" UTC\\)`));
  const get = await ok(['cron', 'get', job]);
  assert.match(get.stdout, /schedule:\s+0 3 \* \* \* \(UTC\)\n/);
  assert.match(get.stdout, /image:\s+busybox:1\.36\n/);
  const list = await ok(['cron', 'list']);
  assert.match(list.stdout, /^CRON JOB\s+SCHEDULE\s+IMAGE\s+RUNNING\s+ID/);
  assert.match(list.stdout, new RegExp(`^${job}\\s+0 3 \\* \\* \\* \\(UTC\\)\\s+busybox:1\\.36\\s+yes\\s+1`, 'm'));

  // What `get --json` prints goes back in as a file, edited.
  const doc = JSON.parse((await ok(['cron', 'get', job, '--json'])).stdout) as Record<string, unknown>;
  const edited = await ok(['cron', 'update', job, '-f', '-', '--json'], JSON.stringify({ ...doc, timezone: 'Europe/Paris', running: false }));
  const after = JSON.parse(edited.stdout) as Record<string, unknown>;
  assert.equal([after.cron_job_id, after.timezone, after.running, after.schedule], [2, 'Europe/Paris', false, '0 3 * * *']);
  const replaced = JSON.parse((await ok(['cron', 'update', job, '--replace', '--schedule', '*/30 * * * * *', '--image', 'busybox:1.37', '--json'])).stdout);
  assert.equal(
    [replaced.cron_job_id, replaced.timezone, replaced.running, replaced.docker_image],
    [3, 'UTC', true, 'busybox:1.37'],
    '--replace defaults the rest',
  );

  const bad = await run(['cron', 'update', job, '--schedule', '0 0 31 2 *']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /schedule/);
  const wrongFile = await run(['cron', 'update', job, '-f', '-'], JSON.stringify({ cron_job_name: 'other', running: true }));
  assert.is(wrongFile.code, 1);
  assert.match(wrongFile.stderr, /is for cron job "other"/);

  assert.match((await ok(['cron', 'runs', job])).stdout, new RegExp(`no runs of ${job} yet`));
  assert.equal(JSON.parse((await ok(['cron', 'runs', job, '--json'])).stdout), { cron_job_name: job, runs: [] });
  assert.match((await ok(['cron', 'delete', job])).stdout, new RegExp(`cron job ${job} deleted`));
  const gone = await run(['cron', 'get', job]);
  assert.is(gone.code, 1);
});

test.run();
