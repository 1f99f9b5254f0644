import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/cli.ts';
import { ADMIN, type CliResult, nebula, type Stack, startStack, suffix } from './stack.ts';

/**
 * `nebula users ...` and `nebula groups ...` as a child process against a running API: secrets only
 * from stdin and never printed (but refresh's new token, once), groups made and changed from flags,
 * a user who is not an admin refused with "access denied", bad flags refused before anything is sent.
 */
const test = suite('cli users');
let stack: Stack;
let admin: Record<string, string>;
const alice = `alice-${suffix()}`;
const bob = `bob-${suffix()}`;
const devs = `devs-${suffix()}`;
const password = `pw-${suffix()}-correct-horse`;
const chosenToken = `tk-${suffix()}-battery-staple`;
/** Every output of every command this file runs, with the token refresh printed, if it did. */
const outputs: Array<{ args: string[]; r: CliResult; refreshed?: string }> = [];
const refreshed: string[] = [];

async function run(args: string[], env = admin, stdin?: string): Promise<CliResult> {
  const r = await nebula(args, env, stdin === undefined ? {} : { stdin });
  outputs.push({ args, r });
  return r;
}

async function ok(args: string[], env = admin, stdin?: string): Promise<CliResult> {
  const r = await run(args, env, stdin);
  assert.is(r.code, 0, `nebula ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function json<T>(args: string[], env = admin): Promise<T> {
  return JSON.parse((await ok([...args, '--json'], env)).stdout) as T;
}

test.before(async () => {
  stack = await startStack();
  admin = { NEBULA_URL: stack.api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
});

test.after(async () => {
  await stack?.close();
});

test('command line: the users and groups commands, their flags checked before anything is sent', () => {
  const c = parseCommandLine(['users', 'create', 'u1', '--password-stdin']);
  assert.ok(c !== 'help');
  assert.equal([c.command, c.args.user, c.values['password-stdin']], ['users create', 'u1', true]);
  const g = parseCommandLine(['groups', 'update', 'g1', '--add-member', 'a', '--add-member', 'b', '--app', 'web=rw', '--no-admin']);
  assert.ok(g !== 'help');
  assert.equal([g.command, g.args.group, g.values['add-member'], g.values.app, g.values['no-admin']], ['groups update', 'g1', ['a', 'b'], ['web=rw'], true]);
  assert.is(parseCommandLine(['help']), 'help');
  assert.is(parseCommandLine(['users', '--help']), 'help');
  for (const [args, msg] of [
    [['users', 'create', 'u1', '--password', 'x'], /--password is the password the CLI logs in with/],
    [['users', 'create', 'u1', '--password-stdin', '--token-stdin'], /one secret from stdin/],
    [['users', 'update', 'u1'], /needs --password-stdin or --token-stdin/],
    [['users', 'refresh', 'u1', '--token-stdin'], /does not take --token-stdin/],
    [['users', 'get'], /needs <user>/],
    [['groups', 'create', 'g1', '--app', 'web=rx'], /--app web=rx: the access must be ro or rw/],
    [['groups', 'create', 'g1', '--remove-member', 'a'], /does not take --remove-member/],
    [['groups', 'update', 'g1'], /needs something to change/],
    [['users', 'fly'], /unknown command "users fly"/],
  ] as const) {
    assert.throws(() => parseCommandLine([...args]), msg);
  }
});

test('users create with a password from stdin, get (no secret), the user logs in with it', async () => {
  const created = await ok(['users', 'create', alice, '--password-stdin'], admin, `${password}\n`);
  assert.match(created.stdout, new RegExp(`^user ${alice} created \\(password from stdin; token random, not shown\\)`));
  assert.match(created.stderr, new RegExp(`a token for ${alice}: nebula users refresh ${alice}`));
  const get = await ok(['users', 'get', alice]);
  assert.match(get.stdout, new RegExp(`user:\\s+${alice}\\n`));
  assert.match(get.stdout, /password:\s+set\n/);
  assert.match(get.stdout, /token:\s+set\n/);
  const doc = await json<Record<string, unknown>>(['users', 'get', alice]);
  assert.equal(Object.keys(doc).sort(), ['created_at', 'password_set', 'token_set', 'updated_at', 'user_name']);
  assert.equal([doc.user_name, doc.password_set], [alice, true]);
  const list = await ok(['users', 'list']);
  assert.match(list.stdout, /^USER\s+PASSWORD\s+TOKEN\s+CREATED/);
  assert.match(list.stdout, new RegExp(`^${alice}\\s+set\\s+set\\s+`, 'm'));
  assert.ok((await json<{ users: string[] }>(['users', 'list'])).users.includes(alice));
  // The password works: alice lists apps (any user may).
  await ok(['apps', 'list'], { NEBULA_URL: stack.api.url, NEBULA_USER: alice, NEBULA_PASSWORD: password });
});

test('a user who is not an admin: "access denied" with the API\'s reason, exit 1', async () => {
  const asAlice = { NEBULA_URL: stack.api.url, NEBULA_USER: alice, NEBULA_PASSWORD: password };
  for (const args of [
    ['users', 'list'],
    ['users', 'get', alice],
    ['groups', 'create', `mine-${suffix()}`, '--member', alice, '--admin'],
  ]) {
    const r = await run(args, asAlice);
    assert.is(r.code, 1, `${args.join(' ')}: ${r.code} ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: access denied: "${alice}" is not an admin \\(HTTP 403\\)\\n$`), r.stderr);
  }
});

test('users refresh prints a token (stdout only) that authenticates; update --token-stdin sets a chosen one', async () => {
  const r = await ok(['users', 'refresh', alice]);
  const token = r.stdout.trim();
  refreshed.push(token);
  outputs.at(-1)!.refreshed = token;
  assert.match(token, /^\S{12,}$/);
  assert.is(r.stdout, `${token}\n`, 'the token alone on stdout');
  assert.match(r.stderr, /not shown again/);
  assert.not.ok(r.stderr.includes(token));
  const asToken = { NEBULA_URL: stack.api.url, NEBULA_TOKEN: token };
  await ok(['apps', 'list'], asToken);
  // It is alice's: not an admin.
  const denied = await run(['users', 'list'], asToken);
  assert.is(denied.code, 1);
  assert.match(denied.stderr, new RegExp(`access denied: "${alice}" is not an admin`));

  const set = await ok(['users', 'update', alice, '--token-stdin'], admin, `${chosenToken}\n`);
  assert.match(set.stdout, new RegExp(`^user ${alice}: token set\\n$`));
  await ok(['apps', 'list'], { NEBULA_URL: stack.api.url, NEBULA_TOKEN: chosenToken });
  const old = await run(['apps', 'list'], asToken);
  assert.is(old.code, 1);
  assert.match(old.stderr, /refused the credentials \(401\)/);
});

test('groups: create with members and app rights, read back, update (add, remove, merge, replace), list', async () => {
  const created = await ok(['groups', 'create', devs, '--member', alice, '--app', 'web=rw', '--app', 'db=ro', '--cron-job', 'nightly=ro', '--pruning-allowed']);
  assert.match(created.stdout, new RegExp(`^user group ${devs} created\\n`));
  assert.match(created.stdout, /apps:\s+db=ro, web=rw\n/);
  const g = await json<Record<string, unknown>>(['groups', 'get', devs]);
  assert.equal(g, {
    user_group: devs,
    group_members: [alice],
    apps: { web: 'rw', db: 'ro' },
    device_groups: {},
    cron_jobs: { nightly: 'ro' },
    admin: false,
    pruning_allowed: true,
    privileged_allowed: false,
  });
  const get = await ok(['groups', 'get', devs]);
  assert.match(get.stdout, new RegExp(`members:\\s+${alice}\\n`));
  assert.match(get.stdout, /admin:\s+no\n/);

  const up = await ok([
    'groups',
    'update',
    devs,
    '--add-member',
    bob,
    '--app',
    'api=ro',
    '--app',
    'web=ro',
    '--app-remove',
    'db',
    '--admin',
    '--no-pruning-allowed',
  ]);
  assert.match(up.stdout, new RegExp(`^user group ${devs} updated\\n`));
  const after = await json<Record<string, unknown>>(['groups', 'get', devs]);
  assert.equal(
    [after.group_members, after.apps, after.cron_jobs, after.admin, after.pruning_allowed],
    [[alice, bob], { web: 'ro', api: 'ro' }, { nightly: 'ro' }, true, false],
  );
  // alice is an admin now (through the group), with her token.
  const asAdminToken = { NEBULA_URL: stack.api.url, NEBULA_TOKEN: chosenToken };
  assert.ok((await json<{ users: string[] }>(['users', 'list'], asAdminToken)).users.includes(alice));

  const note = await ok(['groups', 'update', devs, '--remove-member', alice, '--remove-member', `nobody-${suffix()}`]);
  assert.match(note.stderr, /note: "nobody-[0-9a-f]+" is not a member/);
  const replaced = await json<{ group_members: string[]; apps: object; admin: boolean }>(['groups', 'update', devs, '--member', alice, '--no-admin']);
  assert.equal([replaced.group_members, replaced.apps, replaced.admin], [[alice], { web: 'ro', api: 'ro' }, false]);
  const denied = await run(['users', 'list'], asAdminToken);
  assert.is(denied.code, 1, 'no longer an admin');
  assert.match(denied.stderr, /access denied/);

  const list = await ok(['groups', 'list']);
  assert.match(list.stdout, /^GROUP\s+MEMBERS\s+APPS\s+ADMIN\s+ALLOWED/);
  assert.match(list.stdout, new RegExp(`^${devs}\\s+${alice}\\s+api=ro,web=ro\\s+no`, 'm'));
  assert.ok((await json<{ user_groups: string[] }>(['groups', 'list'])).user_groups.includes(devs));
});

test('bad flag values: exit 2, nothing sent; API refusals: exit 1 with what is wrong, the secret not quoted', async () => {
  // An API that cannot be reached: had anything been sent, this would be exit 1 ("cannot reach").
  const nowhere = { NEBULA_URL: 'http://127.0.0.1:9', NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
  for (const [args, msg] of [
    [['groups', 'create', devs, '--app', 'web=rx'], /^error: --app web=rx: the access must be ro or rw \(got "rx"\)\n/],
    [['groups', 'update', devs, '--device-group', 'edge'], /--device-group takes <name>=ro or <name>=rw/],
    [['groups', 'update', devs, '--member', 'not a name'], /"not a name" is not a valid user name/],
    [['users', 'update', alice], /needs --password-stdin or --token-stdin/],
  ] as const) {
    const r = await run([...args], nowhere);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.code} ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  const short = `short-${suffix()}`;
  const tooShort = await run(['users', 'create', bob, '--password-stdin'], admin, `${short.slice(0, 10)}\n`);
  assert.is(tooShort.code, 1);
  assert.match(tooShort.stderr, /HTTP 400/);
  assert.match(tooShort.stderr, /password: at least 12 characters/);
  assert.not.ok(tooShort.stderr.includes(short.slice(0, 10)));
  const twoLines = await run(['users', 'create', bob, '--password-stdin'], admin, `${password}\n${password}\n`);
  assert.is(twoLines.code, 1);
  assert.match(twoLines.stderr, /must be one line/);
  const empty = await run(['users', 'create', bob, '--password-stdin'], admin, '');
  assert.is(empty.code, 1);
  assert.match(empty.stderr, /no password for .* on standard input/);
  const exists = await run(['users', 'create', alice, '--password-stdin'], admin, `${password}\n`);
  assert.is(exists.code, 1);
  assert.match(exists.stderr, /already exists \(HTTP 403\)/);
  const dup = await run(['groups', 'create', devs]);
  assert.is(dup.code, 1);
  assert.match(dup.stderr, /user group "devs-[0-9a-f]+" already exists \(HTTP 403\)/);
});

test('delete the user and the group; then they are gone', async () => {
  assert.match((await ok(['users', 'delete', alice])).stdout, new RegExp(`^user ${alice} deleted\\n$`));
  const gone = await run(['users', 'get', alice]);
  assert.is(gone.code, 1);
  assert.match(gone.stderr, new RegExp(`user "${alice}" does not exist \\(HTTP 403\\)`));
  // Deleting a user takes it out of its groups.
  assert.equal((await json<{ group_members: string[] }>(['groups', 'get', devs])).group_members, []);
  assert.equal(await json(['groups', 'delete', devs]), { user_group: devs, deleted: true });
  const noGroup = await run(['groups', 'get', devs]);
  assert.is(noGroup.code, 1);
  assert.match(noGroup.stderr, /does not exist/);
  const noUser = await run(['users', 'refresh', alice]);
  assert.is(noUser.code, 1);
  assert.match(noUser.stderr, /does not exist/);
});

test('no secret given on stdin is in any output; the refreshed token only in its own stdout', () => {
  assert.ok(outputs.length > 30, `${outputs.length} commands ran`);
  assert.is(refreshed.length, 1);
  for (const { args, r, refreshed: own } of outputs) {
    const all = `${r.stdout}\n${r.stderr}`;
    for (const secret of [password, chosenToken]) assert.not.ok(all.includes(secret), `nebula ${args.join(' ')} printed a secret given on stdin`);
    const token = refreshed[0]!;
    if (own === undefined) assert.not.ok(all.includes(token), `nebula ${args.join(' ')} printed the refreshed token`);
    else assert.not.ok(r.stderr.includes(token), 'refresh: the token not on stderr');
  }
});

test.run();
