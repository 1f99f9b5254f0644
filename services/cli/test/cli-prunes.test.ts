import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/cli.ts';
import { ADMIN, type CliResult, nebula, type Stack, startStack, suffix } from './stack.ts';

/**
 * `nebula prunes list`, `nebula cron runs` and the hosts' device group as a child process against a
 * running API, over rows as the notifier writes them from the hosts' reports: the table, the total
 * freed shown for people, --json, the filters; bad flags refused before anything is sent.
 */
const test = suite('cli prunes');
let stack: Stack;
let admin: Record<string, string>;
const g = `edge-${suffix()}`;

async function ok(args: string[]): Promise<CliResult> {
  const r = await nebula(args, admin);
  assert.is(r.code, 0, `nebula ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

test.before(async () => {
  stack = await startStack();
  admin = { NEBULA_URL: stack.api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
  await stack.db
    .insertInto('host_prunes')
    .values([
      { host: `${g}-1`, device_group: g, prune_id: 1, bytes_freed: 3 * 1024 ** 3, images_removed: ['sha256:a'], error: null, reported_at: new Date() },
      { host: `${g}-2`, device_group: g, prune_id: 1, bytes_freed: 512 * 1024 ** 2, images_removed: [], error: 'engine away', reported_at: new Date() },
      { host: `${g}-1`, device_group: g, prune_id: 2, bytes_freed: 0, images_removed: [], error: null, reported_at: new Date() },
    ])
    .execute();
});
test.after(async () => {
  await stack?.close();
});

test('command line: prunes list and its flags', () => {
  const c = parseCommandLine(['prunes', 'list', '--device-group', g, '--prune-id', '2', '--host', 'h1']);
  assert.ok(c !== 'help');
  assert.equal([c.command, c.values['device-group'], c.values['prune-id'], c.values.host], ['prunes list', [g], '2', 'h1']);
  for (const [args, msg] of [
    [['prunes', 'list', '--prune-id', '0'], /--prune-id must be a whole number/],
    [['prunes', 'list', '--device-group', 'a', '--device-group', 'b'], /takes one --device-group/],
    [['prunes', 'list', '--schedule', 'x'], /does not take --schedule/],
    [['prunes', 'fly'], /unknown command "prunes fly"/],
  ] as const) {
    assert.throws(() => parseCommandLine([...args]), msg);
  }
});

test('prunes list: one row per host and prune, the total in bytes for people; filters; --json', async () => {
  const all = (await ok(['prunes', 'list', '--device-group', g])).stdout;
  assert.match(all, /DEVICE GROUP\s+PRUNE\s+HOST\s+FREED\s+IMAGES\s+REPORTED\s+ERROR/);
  assert.match(all, new RegExp(`${g}\\s+1\\s+${g}-1\\s+3GiB\\s+1`));
  assert.match(all, /512MiB\s+0\s+.*engine away/);
  assert.match(all, /total freed: 3\.5GiB \(3758096384 bytes\), 3 reports from 2 hosts listed/);
  const one = (await ok(['prunes', 'list', '--device-group', g, '--prune-id', '2'])).stdout;
  assert.match(one, /total freed: 0B \(0 bytes\), 1 reports from 1 hosts listed/);
  const json = JSON.parse((await ok(['prunes', 'list', '--device-group', g, '--prune-id', '1', '--json'])).stdout) as {
    bytes_freed: number;
    prunes: unknown[];
  };
  assert.is(json.bytes_freed, 3 * 1024 ** 3 + 512 * 1024 ** 2);
  assert.is(json.prunes.length, 2);
  assert.match((await ok(['prunes', 'list', '--device-group', `none-${suffix()}`])).stdout, /no prunes reported\ntotal freed: 0B/);
});

test('cron runs: host, start, end, exit code, timed out, the last log line or why it did not run', async () => {
  const job = `job-${suffix()}`;
  await ok(['cron', 'create', job, '--schedule', '*/10 * * * * *', '--image', 'busybox']);
  const { incarnation } = await stack.db.selectFrom('cron_jobs').select('incarnation').where('name', '=', job).executeTakeFirstOrThrow();
  await stack.db
    .insertInto('cron_job_runs')
    .values([
      {
        incarnation,
        cron_job_id: 1,
        host_id: 'h1',
        started_at: '2030-01-01T00:00:00Z',
        finished_at: '2030-01-01T00:00:02Z',
        exit_code: 0,
        log_tail: 'one\ntwo\n',
      },
      { incarnation, cron_job_id: 1, host_id: 'h2', started_at: '2030-01-01T00:00:10Z', finished_at: '2030-01-01T00:01:10Z', exit_code: 137, timed_out: true },
      { incarnation, cron_job_id: 1, host_id: 'h3', started_at: '2030-01-01T00:00:20Z', error: 'image busybox:nope not found' },
    ])
    .execute();
  const out = (await ok(['cron', 'runs', job])).stdout;
  assert.match(out, /HOST\s+STARTED\s+FINISHED\s+TOOK\s+EXIT\s+TIMED OUT\s+LAST LOG LINE/);
  assert.match(out, /h1\s+2030-01-01T00:00:00.000Z\s+2030-01-01T00:00:02.000Z\s+2s\s+0\s+no\s+two/);
  assert.match(out, /h2\s+2030-01-01T00:00:10.000Z\s+2030-01-01T00:01:10.000Z\s+60s\s+137\s+yes/);
  assert.match(out, /h3\s+2030-01-01T00:00:20.000Z\s+running\s+-\s+-\s+no\s+error: image busybox:nope not found/);
});

test('hosts list and get show the device group the heartbeats name', async () => {
  const h = `${g}-host`;
  await stack.db
    .insertInto('hosts')
    .values({
      id: h,
      apps: [],
      running: '[]',
      cores: 2,
      memory_mb: 1024,
      worker_version: 't',
      heartbeat_interval_seconds: 5,
      last_seen: new Date(),
      device_group: g,
    })
    .execute();
  assert.match((await ok(['hosts', 'list'])).stdout, new RegExp(`${h}\\s+\\S+\\s+-\\s+${g}\\s+hub\\s`), 'no credential: the hub');
  assert.match((await ok(['hosts', 'get', h])).stdout, new RegExp(`device group:\\s+${g}`));
  assert.is(JSON.parse((await ok(['hosts', 'get', h, '--json'])).stdout).device_group, g);
});

test.run();
