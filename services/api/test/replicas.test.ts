import { waitFor } from '@nebula/test-kit';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN, type ApiProcess, http, spawnApi, startEnv, streamMessages, type TestEnv, TOKEN, uniqueName } from './helpers.ts';

/**
 * Two API processes taking writes at once, one of them killed (SIGKILL) mid-way: every committed
 * revision reaches the stream once, in order per app.
 */
const test = suite('replicas');
let env: TestEnv;
const procs: ApiProcess[] = [];

test.before(async () => {
  env = await startEnv();
});
test.after(async () => {
  for (const p of procs) await p.stop();
  await env.close();
});

async function relayActive(p: ApiProcess): Promise<boolean> {
  const res = await fetch(`${p.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return /^nebula_api_outbox_relay_active\{[^}]*\} 1$/m.test(await res.text());
}

test('concurrent writes through two replicas, the publishing one killed: no loss, no duplicate, order kept', async () => {
  const vars = {
    DATABASE_URL: env.dbUrl,
    ...env.busVars,
    BASIC_AUTH_USER: ADMIN.user,
    BASIC_AUTH_PASSWORD: ADMIN.password,
    AUTH_TOKEN: TOKEN,
    LOG_LEVEL: 'warn',
  };
  const [a, b] = await Promise.all([spawnApi(vars), spawnApi(vars)]);
  procs.push(a!, b!);
  const replicas = [a!, b!];
  const active = await waitFor('one relay active', async () => {
    const flags = await Promise.all(replicas.map(relayActive));
    return flags.filter(Boolean).length === 1 ? replicas[flags.indexOf(true)] : undefined;
  });
  const survivor = active === a ? b! : a!;

  const apps = Array.from({ length: 6 }, () => uniqueName('rep'));
  await Promise.all(apps.map((name, i) => http(replicas[i % 2]!.url, 'POST', `/api/v2/apps/${name}`, { body: { docker_image: 'nginx:0' } })));

  // Rounds of concurrent updates to every app through both replicas; the active one dies after round 2.
  let failed = 0;
  for (let round = 1; round <= 5; round++) {
    const calls = apps.flatMap((name) =>
      replicas.map((r, j) =>
        http(r.url, 'PATCH', `/api/v2/apps/${name}/update`, { body: { env_vars: { ROUND: String(round), FROM: String(j) } } }).then(
          (res) => assert.is(res.status, 202, res.text),
          () => failed++, // the killed replica's connections: the change may or may not have committed
        ),
      ),
    );
    if (round === 3) active!.proc.kill('SIGKILL');
    await Promise.all(calls);
    if (round >= 3) replicas.splice(0, replicas.length, survivor);
  }

  await waitFor('survivor publishes', () => relayActive(survivor), 20_000);
  await waitFor(
    'outbox drained',
    async () => {
      const r = await env.db.selectFrom('outbox').select(env.db.fn.countAll<string>().as('n')).where('published_at', 'is', null).executeTakeFirstOrThrow();
      return Number(r.n) === 0;
    },
    30_000,
  );

  const all = await streamMessages(env.nc);
  const ids = all.map((m) => `${m.app}:${m.incarnation}:${m.revision}`);
  assert.is(new Set(ids).size, ids.length, 'a revision is in the stream twice');
  const outboxRows = await env.db.selectFrom('outbox').select(env.db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  assert.is(all.length, Number(outboxRows.n), 'stream and outbox differ');
  for (const name of apps) {
    const app = await env.db.selectFrom('apps').select('revision').where('name', '=', name).executeTakeFirstOrThrow();
    const revisions = all.filter((m) => m.app === name).map((m) => m.revision);
    // Every committed revision, once, in the order they were made.
    assert.equal(
      revisions,
      Array.from({ length: app.revision }, (_, i) => i + 1),
      name,
    );
    assert.ok(app.revision >= 1 + 2 * 2 + 3, `${name} took the writes (${app.revision})`);
  }
  assert.ok(failed <= apps.length * 3, `failed: ${failed}`);
});

test.run();
