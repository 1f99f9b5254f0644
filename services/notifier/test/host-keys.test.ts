import { createUser } from '@nats-io/nkeys';
import { headers } from '@nats-io/transport-node';
import { SIGNATURE_HEADER } from '@nebula/bus-auth';
import { hostSigner } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { authenticator, HostKeyCache, type HostKeyRow, type HostKeySource, rateLimited } from '../src/index.ts';
import { log } from './fleet-log.ts';

/** A host_credentials table in memory, counting the queries. */
function fakeSource(): HostKeySource & { rows: Map<string, HostKeyRow>; failing: boolean } {
  const rows = new Map<string, HostKeyRow>();
  const src = {
    rows,
    failing: false,
    async all() {
      if (src.failing) throw new Error('postgres away');
      return [...rows.values()].map((r) => ({ ...r }));
    },
    async one(id: string) {
      if (src.failing) throw new Error('postgres away');
      const r = rows.get(id);
      return r ? { ...r } : null;
    },
  };
  return src;
}
const row = (host_id: string, revoked = false): HostKeyRow => ({ host_id, public_key: createUser().getPublicKey(), revoked });

test('known hosts cost no query; an unknown host is read at most once per refresh; a refresh brings revocations', async () => {
  const src = fakeSource();
  src.rows.set('h1', row('h1'));
  const cache = new HostKeyCache(src, 60_000, log);
  await cache.start();
  try {
    assert.equal(cache.queries, { all: 1, one: 0 });
    for (let i = 0; i < 1000; i++) assert.is(cache.peek('h1')?.state, 'active');
    assert.equal(cache.queries, { all: 1, one: 0 }, 'the hot path asks nothing');

    // A stranger: one read, then known as unknown until the next refresh.
    assert.is(cache.peek('x'), undefined);
    const [a, b] = await Promise.all([cache.lookup('x'), cache.lookup('x')]);
    assert.is(a.state, 'unknown');
    assert.is(b.state, 'unknown');
    for (let i = 0; i < 100; i++) assert.is(cache.peek('x')?.state, 'unknown');
    assert.is((await cache.lookup('x')).state, 'unknown');
    assert.equal(cache.queries, { all: 1, one: 1 }, 'coalesced, and not asked again before the refresh');

    // A host that joined since the last refresh is accepted at once (read on its first message).
    src.rows.set('h2', row('h2'));
    assert.is(cache.peek('h2'), undefined);
    assert.is((await cache.lookup('h2')).state, 'active');
    assert.is(cache.peek('h2')?.state, 'active');

    // Revoked: the map keeps the old key until the refresh, then says revoked.
    src.rows.set('h1', { ...src.rows.get('h1')!, revoked: true });
    assert.is(cache.peek('h1')?.state, 'active');
    await cache.refresh();
    // Anything but an active key is read once more on its own (a revoked host may have joined again).
    assert.is(cache.peek('h1'), undefined);
    assert.is((await cache.lookup('h1')).state, 'revoked');
    assert.is(cache.peek('h1')?.state, 'revoked');
    assert.is(cache.peek('x'), undefined, 'a stranger may be read again after a refresh');
    assert.ok(cache.mayLookup('h2'));

    // A failed refresh keeps the last keys.
    src.failing = true;
    await cache.refresh().catch(() => undefined);
    assert.is(cache.peek('h2')?.state, 'active');
    assert.is(cache.peek('h1')?.state, 'revoked');
    try {
      await cache.lookup('y');
      assert.unreachable('a failed read rejects (the message is retried)');
    } catch (err) {
      assert.match(String(err), /postgres away/);
    }
    src.failing = false;
    assert.is((await cache.lookup('y')).state, 'unknown', 'a failed read does not count as the one of this refresh');
  } finally {
    cache.stop();
  }
});

test('a key that is not a user nkey counts as no key', async () => {
  const src = fakeSource();
  src.rows.set('bad', { host_id: 'bad', public_key: 'Unot-a-key', revoked: false });
  const cache = new HostKeyCache(src, 60_000, log);
  await cache.refresh();
  assert.is((await cache.lookup('bad')).state, 'unknown');
});

test('a host that joined again with a new key is accepted at once; a forger costs one query per refresh', async () => {
  const src = fakeSource();
  const old = createUser();
  src.rows.set('h1', { host_id: 'h1', public_key: old.getPublicKey(), revoked: false });
  const cache = new HostKeyCache(src, 60_000, log);
  await cache.refresh();
  const check = authenticator('heartbeats', cache);
  const msg = (seed: Uint8Array | null) => {
    const data = new TextEncoder().encode('{}');
    const h = headers();
    if (seed) h.set(SIGNATURE_HEADER, hostSigner(new TextDecoder().decode(seed))('hosts.h1', data));
    return { subject: 'hosts.h1', data, headers: h };
  };
  assert.equal(check(msg(old.getSeed())), { ok: true, host: 'h1' }, 'synchronous with the key in memory');

  const fresh = createUser();
  src.rows.set('h1', { host_id: 'h1', public_key: fresh.getPublicKey(), revoked: false });
  const v = check(msg(fresh.getSeed()));
  assert.ok(v instanceof Promise, 'the key in memory fails: the row is read again');
  assert.equal(await v, { ok: true, host: 'h1' });
  assert.is(cache.queries.one, 1);

  const forger = createUser();
  for (let i = 0; i < 50; i++) assert.equal(await check(msg(forger.getSeed())), { ok: false, reason: 'bad_signature', host: 'h1' });
  assert.equal(check(msg(null)), { ok: false, reason: 'unsigned', host: 'h1' });
  assert.is(cache.queries.one, 1, 'no more reads before the next refresh');
  await cache.refresh();
  assert.equal(await check(msg(forger.getSeed())), { ok: false, reason: 'bad_signature', host: 'h1' });
  assert.is(cache.queries.one, 2, 'one more after it');
});

test('rateLimited: one call per key and interval, the skipped ones counted', () => {
  let now = 0;
  const limit = rateLimited(10_000, () => now);
  const seen: Array<[string, number]> = [];
  for (let i = 0; i < 100; i++) limit('unsigned', (skipped) => seen.push(['unsigned', skipped]));
  limit('bad_signature', (skipped) => seen.push(['bad_signature', skipped]));
  now = 10_000;
  limit('unsigned', (skipped) => seen.push(['unsigned', skipped]));
  assert.equal(seen, [
    ['unsigned', 0],
    ['bad_signature', 0],
    ['unsigned', 99],
  ]);
});

test.run();
