import { createUser } from '@nats-io/nkeys';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/cli.ts';
import { ADMIN, nebula, type Stack, startStack, suffix } from './stack.ts';

/**
 * `nebula hosts join-token create|list|delete` and `nebula hosts revoke` as a child process against
 * a running API on a secured nats-server: the token printed once with the command to run, a host
 * joining with it, the host revoked.
 */
const test = suite('cli join tokens');
let stack: Stack;
let env: Record<string, string>;

async function ok(args: string[]) {
  const r = await nebula(args, env);
  assert.is(r.code, 0, `nebula ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

test.before(async () => {
  stack = await startStack();
  env = { NEBULA_URL: stack.api.url, NEBULA_USER: ADMIN.user, NEBULA_PASSWORD: ADMIN.password };
});

test.after(async () => {
  await stack?.close();
});

test('command line: the join-token commands and their options', () => {
  const p = parseCommandLine(['hosts', 'join-token', 'create', '--ttl', '2h', '--uses', '3', '--apps', 'web,db', '--description', 'rack 4', '--region', 'eu']);
  assert.ok(p !== 'help');
  assert.is(p.command, 'hosts join-token create');
  assert.equal([p.values.ttl, p.values.uses, p.values.apps, p.values.description, p.values.region], ['2h', '3', 'web,db', 'rack 4', 'eu']);
  const d = parseCommandLine(['hosts', 'join-token', 'delete', 'abc']);
  assert.ok(d !== 'help');
  assert.equal([d.command, d.args.id], ['hosts join-token delete', 'abc']);
  const r = parseCommandLine(['hosts', 'revoke', 'h1']);
  assert.ok(r !== 'help');
  assert.equal([r.command, r.args.host], ['hosts revoke', 'h1']);
  for (const [args, msg] of [
    [['hosts', 'join-token', 'create', '--ttl', '10s'], /--ttl must be a duration from 1m/],
    [['hosts', 'join-token', 'create', '--apps', 'a b'], /--apps must be app names/],
    [['hosts', 'join-token', 'create', '--uses', '0'], /--uses must be a whole number/],
    [['hosts', 'join-token'], /unknown command "hosts join-token"/],
    [['hosts', 'join-token', 'list', '--ttl', '1h'], /does not take --ttl/],
    [['hosts', 'join-token', 'delete'], /needs <id>/],
    [['hosts', 'revoke'], /needs <host>/],
  ] as const) {
    assert.throws(() => parseCommandLine([...args]), msg);
  }
});

test('join-token create prints the token (stdout) and the command to run (stderr); list shows no secret; delete', async () => {
  const app = `web-${suffix()}`;
  const created = await ok(['hosts', 'join-token', 'create', '--ttl', '2h', '--uses', '2', '--apps', `${app},db`, '--description', 'rack 4']);
  const token = created.stdout.trim();
  assert.match(token, /^nebula-join\.[0-9a-f]{32}\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/);
  assert.match(created.stderr, /2 uses/);
  assert.match(created.stderr, /not shown again/);
  assert.match(created.stderr, new RegExp(`NEBULA_URL=${stack.api.url} NATS_URL=\\S+ NEBULA_JOIN_TOKEN=${token} APP_NAME=db,${app} nebula-worker`));
  assert.match(created.stderr, new RegExp(`docker run -d .* -e NEBULA_JOIN_TOKEN=${token} -e APP_NAME=db,${app} nebula/worker:latest`));
  const id = token.split('.')[2] ?? '';

  const list = await ok(['hosts', 'join-token', 'list']);
  assert.match(list.stdout, /ID\s+STATE\s+USES LEFT\s+APPS\s+REGION/);
  assert.match(list.stdout, new RegExp(`${id}\\s+valid\\s+2\\s+db,${app}\\s+hub\\s`));
  assert.match(list.stdout, /rack 4/);
  assert.not.ok(list.stdout.includes(token.split('.')[3] ?? '-'), 'no secret in the list');
  const listed = JSON.parse((await ok(['hosts', 'join-token', 'list', '--json'])).stdout) as { join_tokens: Array<{ id: string }> };
  assert.ok(listed.join_tokens.some((t) => t.id === id));

  const asJson = JSON.parse((await ok(['hosts', 'join-token', 'create', '--json'])).stdout) as {
    token: string;
    command: string;
    uses_left: number;
    apps: null;
  };
  assert.equal([asJson.uses_left, asJson.apps], [1, null]);
  assert.match(asJson.command, /APP_NAME=<app,\.\.\.>/);

  assert.match((await ok(['hosts', 'join-token', 'delete', id])).stdout, /deleted/);
  const again = await nebula(['hosts', 'join-token', 'delete', id], env);
  assert.is(again.code, 1);
  assert.match(again.stderr, /does not exist/);
  assert.not.ok((await ok(['hosts', 'join-token', 'list'])).stdout.includes(id));
});

test('hosts revoke: a host that joined with a token is revoked; an unknown one is an error', async () => {
  const token = (await ok(['hosts', 'join-token', 'create'])).stdout.trim();
  const hostId = `h-${suffix()}`;
  const joined = await fetch(`${stack.api.url}/api/v2/hosts/join`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, host_id: hostId, public_key: createUser().getPublicKey(), apps: ['web'] }),
  });
  assert.is(joined.status, 200);
  const r = await ok(['hosts', 'revoke', hostId]);
  assert.match(r.stdout, new RegExp(`host ${hostId} revoked \\(at \\d{4}-`));
  const j = JSON.parse((await ok(['hosts', 'revoke', hostId, '--json'])).stdout) as { host_id: string; revoked_at: string };
  assert.is(j.host_id, hostId);
  const unknown = await nebula(['hosts', 'revoke', `nobody-${suffix()}`], env);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /never joined/);
});

test.run();
