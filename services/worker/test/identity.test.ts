import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, createUser } from '@nats-io/nkeys';
import { connect } from '@nats-io/transport-node';
import { type ControlPlaneKeys, createBusSetup, hostPermissions, issueUserJwt, jwtExpiry, keyFingerprint, keyFromSeed, verifyMessage } from '@nebula/bus-auth';
import {
  formatJoinToken,
  type HostCredential,
  type JoinRequest,
  joinRequestSchema,
  RENEW_SUBJECT,
  type RenewRequest,
  renewRequestSchema,
  renewSigningBytes,
  subjects,
} from '@nebula/contracts';
import { ConfigError } from '@nebula/service-kit';
import { freePort, startNatsServer, waitFor } from '@nebula/test-kit';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostConnectOptions } from '../src/identity/bus-connection.ts';
import {
  ControlPlaneKeyMismatchError,
  ControlPlaneRefusedError,
  ControlPlaneUnavailableError,
  checkJoinAnswer,
  describeApiError,
} from '../src/identity/control-plane-client.ts';
import { CredentialFileError, readCredentialFile, writeCredentialFile } from '../src/identity/credential-file.ts';
import { CredentialExpiredError, establishIdentity, type HostIdentityConfig } from '../src/identity/host-identity.ts';
import { joinRetryDelayMs, renewalDelayMs, retryDelayMs } from '../src/identity/renewal.ts';
import { log } from './helpers.ts';

/**
 * The host's side of joining and renewing, against a small HTTP server of our own that answers the
 * join and renew routes as the contract says (libs/contracts host-join.ts): real JWTs issued with a
 * fresh installation's keys, signatures checked. The API's real routes are tested with the API.
 */
let keys: ControlPlaneKeys;
let dir: string;

interface FakeApi {
  url: string;
  joins: unknown[];
  renews: RenewRequest[];
  /** ok; refuse: 4xx; wrong-key: another control plane key; hang: never answers. */
  mode: 'ok' | 'wrong-key' | 'hang';
  /** The next this many joins are answered 503, as by an API shedding load (its database busy). */
  busyJoins: number;
  lifetimeMs: number;
  token: string;
  close(): Promise<void>;
}

async function startFakeApi(issuer: ControlPlaneKeys = keys): Promise<FakeApi> {
  const cpKey = keyFromSeed(issuer.message_signing_seed).getPublicKey();
  const token = formatJoinToken({ fingerprint: keyFingerprint(cpKey), id: crypto.randomUUID(), secret: `s3cret-${crypto.randomUUID().replace(/-/g, '')}` });
  const hosts = new Map<string, string>(); // host id -> public key
  let used = false;
  const api: FakeApi = {
    url: '',
    joins: [],
    renews: [],
    mode: 'ok',
    busyJoins: 0,
    lifetimeMs: 3_600_000,
    token,
    close: async () => undefined,
  };
  const body = (req: IncomingMessage) =>
    new Promise<unknown>((resolve) => {
      let t = '';
      req.on('data', (d: Buffer) => (t += d.toString()));
      req.on('end', () => resolve(JSON.parse(t)));
    });
  const send = (res: ServerResponse, status: number, b: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(b));
  };
  const credential = async (hostId: string, publicKey: string, apps: string[], group?: string): Promise<HostCredential> => {
    const expiresAt = new Date(Date.now() + api.lifetimeMs);
    const jwt = await issueUserJwt(issuer, { name: hostId, publicKey, permissions: hostPermissions(hostId, apps, group), expiresAt });
    return {
      ...(group === undefined ? {} : { device_group: group }),
      host_id: hostId,
      jwt,
      expires_at: (jwtExpiry(jwt) ?? expiresAt).toISOString(),
      apps,
      control_plane_key: api.mode === 'wrong-key' ? createServer().getPublicKey() : cpKey,
    };
  };
  const server = createHttpServer((req, res) => {
    void (async () => {
      const raw = await body(req);
      if (api.mode === 'hang') return; // never answers
      if (req.url === '/api/v2/hosts/join') {
        api.joins.push(raw);
        if (api.busyJoins > 0) {
          api.busyJoins -= 1;
          return send(res, 503, { error: 'service unavailable: the database is not answering: try again shortly' });
        }
        const r = joinRequestSchema.safeParse(raw);
        if (!r.success) return send(res, 400, { errors: { '(body)': [r.error.issues[0]?.message] } });
        if (r.data.token !== token || used) return send(res, 401, { error: 'invalid join token', message: 'the token is expired, used up or unknown' });
        used = true;
        hosts.set(r.data.host_id, r.data.public_key);
        return send(res, 200, await credential(r.data.host_id, r.data.public_key, r.data.apps, r.data.device_group));
      }
      if (req.url === '/api/v2/hosts/renew') {
        const r = renewRequestSchema.safeParse(raw);
        if (!r.success) return send(res, 400, { errors: { '(body)': [r.error.issues[0]?.message] } });
        api.renews.push(r.data);
        const pub = hosts.get(r.data.host_id);
        const { signature, ...unsigned } = r.data;
        if (pub === undefined || !verifyMessage(pub, RENEW_SUBJECT, renewSigningBytes(unsigned), signature)) return send(res, 401, { error: 'bad signature' });
        return send(res, 200, await credential(r.data.host_id, pub, r.data.apps, r.data.device_group));
      }
      send(res, 404, { error: 'not found' });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return api;
}

/** Resolves when `p` rejects with an error that passes `check` (a RegExp on the message, or a predicate). */
async function rejects(p: Promise<unknown>, check: RegExp | ((err: Error) => boolean)): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, 'expected a rejection');
  const e = err as Error;
  assert.ok(typeof check === 'function' ? check(e) : check.test(e.message), `${e.name}: ${e.message}`);
}

const file = (name: string) => join(dir, name, 'credentials.json');

function config(api: FakeApi | { url: string; token?: string }, over: Partial<HostIdentityConfig> = {}): HostIdentityConfig {
  return {
    hostId: 'h1',
    apps: ['web'],
    credentialsFile: file('h1'),
    nebulaUrl: api.url,
    joinToken: 'token' in api ? api.token : undefined,
    consumer: { ack_wait_seconds: 7, inactive_threshold_hours: 2 },
    timeoutMs: 2_000,
    retryBaseMs: 50,
    retryMaxMs: 200,
    log,
    ...over,
  };
}

test.before(async () => {
  keys = (await createBusSetup()).keys;
  dir = mkdtempSync(join(tmpdir(), 'nebula-identity-'));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('join: only the public key travels; the file has mode 600, the key and the pinned control plane key, never the token', async () => {
  const api = await startFakeApi();
  try {
    const path = file('join');
    const id = await establishIdentity(config(api, { credentialsFile: path }));
    assert.is(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, 'utf8');
    assert.not.ok(text.includes(api.token), 'the token is not in the file');
    assert.not.ok(text.includes(api.token.split('.')[3] as string), 'nor its secret');
    const stored = readCredentialFile(path)!;
    assert.is(id.controlPlaneKey, keyFromSeed(keys.message_signing_seed).getPublicKey());
    assert.is(stored.control_plane_key, id.controlPlaneKey);
    const sent = api.joins[0] as JoinRequest;
    assert.is(sent.public_key, keyFromSeed(stored.seed).getPublicKey(), 'the public key of the seed kept');
    assert.not.ok(JSON.stringify(api.joins).includes(stored.seed), 'the seed never left');
    assert.equal(sent.consumer, { ack_wait_seconds: 7, inactive_threshold_hours: 2 }, 'the consumer tuning is asked for');
    assert.is(id.jwt(), stored.jwt);
    assert.equal(readdirSync(join(dir, 'join')), ['credentials.json'], 'no temporary file left');
    assert.is(api.renews.length, 0, 'no renewal right after the join');
    id.stop();
  } finally {
    await api.close();
  }
});

test("a used token is refused with the API's message; nothing is written", async () => {
  const api = await startFakeApi();
  try {
    await establishIdentity(config(api, { credentialsFile: file('first') }));
    const path = file('second');
    try {
      await establishIdentity(config(api, { hostId: 'h2', credentialsFile: path }));
      assert.unreachable('a used token must be refused');
    } catch (err) {
      assert.instance(err, ControlPlaneRefusedError);
      assert.match((err as Error).message, /HTTP 401: invalid join token: the token is expired, used up or unknown/);
      assert.not.ok((err as Error).message.includes(api.token), 'the token is not in the error');
    }
    assert.is(readCredentialFile(path), null);
    assert.is(api.joins.length, 2, 'a refusal is not tried again');
  } finally {
    await api.close();
  }
});

test("a join answer whose key does not match the token's fingerprint is refused; nothing is written", async () => {
  const api = await startFakeApi();
  api.mode = 'wrong-key';
  try {
    const path = file('mismatch');
    try {
      await establishIdentity(config(api, { credentialsFile: path }));
      assert.unreachable('must be refused');
    } catch (err) {
      assert.instance(err, ControlPlaneKeyMismatchError);
      assert.is((err as Error).message, "the API's key does not match the join token: wrong NEBULA_URL?");
    }
    assert.is(readCredentialFile(path), null);
  } finally {
    await api.close();
  }
});

test('checkJoinAnswer: accepts exactly the key the fingerprint names', () => {
  fc.assert(
    fc.property(fc.boolean(), (same) => {
      const key = createServer().getPublicKey();
      const answer = { host_id: 'h', jwt: 'j', expires_at: '', apps: [], control_plane_key: same ? key : createServer().getPublicKey() };
      try {
        checkJoinAnswer({ fingerprint: keyFingerprint(key) }, answer);
        return same;
      } catch (err) {
        return !same && err instanceof ControlPlaneKeyMismatchError;
      }
    }),
    { numRuns: 20 },
  );
});

test('no credentials file and nothing to join with: a ConfigError naming NEBULA_URL and NEBULA_JOIN_TOKEN', async () => {
  for (const over of [{ nebulaUrl: undefined, joinToken: undefined }, { joinToken: undefined }]) {
    try {
      await establishIdentity(config({ url: 'http://127.0.0.1:9' }, { credentialsFile: file('none'), ...over }));
      assert.unreachable('must fail');
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.equal((err as ConfigError).variables, ['NEBULA_URL', 'NEBULA_JOIN_TOKEN']);
      assert.match((err as Error).message, /NEBULA_URL and NEBULA_JOIN_TOKEN/);
    }
  }
  try {
    await establishIdentity(config({ url: 'http://127.0.0.1:9' }, { credentialsFile: file('none'), joinToken: 'not-a-token' }));
    assert.unreachable('must fail');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.equal((err as ConfigError).variables, ['NEBULA_JOIN_TOKEN']);
  }
});

test('the credentials file: written with mode 600 whatever the umask; one readable by group or others is refused', () => {
  const path = file('modes');
  const cred = {
    v: 1 as const,
    host_id: 'h1',
    nebula_url: 'http://127.0.0.1:8080',
    seed: new TextDecoder().decode(createUser().getSeed()),
    jwt: 'x',
    expires_at: new Date().toISOString(),
    received_at: new Date().toISOString(),
    control_plane_key: createServer().getPublicKey(),
    apps: [],
  };
  const old = process.umask(0);
  try {
    writeCredentialFile(path, cred);
  } finally {
    process.umask(old);
  }
  assert.is(statSync(path).mode & 0o777, 0o600);
  assert.equal(readCredentialFile(path), cred);
  chmodSync(path, 0o640);
  assert.throws(
    () => readCredentialFile(path),
    (err: Error) => err instanceof CredentialFileError && /readable by group or others \(mode 640\).*chmod 600/.test(err.message),
  );
  chmodSync(path, 0o604);
  assert.throws(
    () => readCredentialFile(path),
    (err: Error) => err instanceof CredentialFileError,
  );
  chmodSync(path, 0o600);
  writeCredentialFile(path, { ...cred, jwt: 'y' });
  assert.is(readCredentialFile(path)?.jwt, 'y', 'replaced whole');
});

test('a credentials file of another host id is not used', async () => {
  const api = await startFakeApi();
  try {
    const path = file('other-host');
    await establishIdentity(config(api, { credentialsFile: path, hostId: 'h-a' }));
    await rejects(establishIdentity(config(api, { credentialsFile: path, hostId: 'h-b' })), /belongs to host h-a, not to HOST_ID h-b/);
  } finally {
    await api.close();
  }
});

test('at start with a file: renewed (signed with the host key, the apps of APP_NAME now), the new JWT saved', async () => {
  const api = await startFakeApi();
  try {
    const path = file('renew');
    const first = await establishIdentity(config(api, { credentialsFile: path }));
    first.stop();
    const before = readCredentialFile(path)!;
    await new Promise((r) => setTimeout(r, 1_100)); // a JWT issued a second later differs (iat)
    const id = await establishIdentity(config(api, { credentialsFile: path, apps: ['web', 'db'], joinToken: undefined, nebulaUrl: undefined }));
    assert.is(api.renews.length, 1);
    assert.equal(api.renews[0]?.apps, ['web', 'db']);
    assert.equal(api.renews[0]?.consumer, { ack_wait_seconds: 7, inactive_threshold_hours: 2 });
    const after = readCredentialFile(path)!;
    assert.is.not(after.jwt, before.jwt);
    assert.is(id.jwt(), after.jwt);
    assert.equal(after.apps, ['web', 'db']);
    assert.is(after.seed, before.seed, 'the same key');
    assert.is(statSync(path).mode & 0o777, 0o600);
    // provision: a renewal on demand.
    await id.renew();
    assert.is(api.renews.length, 2);
    id.stop();
  } finally {
    await api.close();
  }
});

test('with a device group: join and every renewal name it (signed), renew(apps) sets the app set later renewals ask for, the file keeps the group', async () => {
  const api = await startFakeApi();
  try {
    const path = file('group');
    const first = await establishIdentity(config(api, { credentialsFile: path, apps: [], deviceGroup: 'g1' }));
    assert.is((api.joins[0] as JoinRequest).device_group, 'g1');
    assert.is(readCredentialFile(path)?.device_group, 'g1');
    await first.renew(['a', 'b']);
    await first.renew();
    first.stop();
    assert.equal(
      api.renews.map((r) => [r.apps, r.device_group]),
      [
        [['a', 'b'], 'g1'],
        [['a', 'b'], 'g1'],
      ],
      'the current app set, each time with the group (the fake API checks the signature over both)',
    );
    assert.equal(readCredentialFile(path)?.apps, ['a', 'b']);
  } finally {
    await api.close();
  }
});

test('the API unreachable at start: a valid JWT is used and renewal retried in the background; an expired one stops the start', async () => {
  const api = await startFakeApi();
  const path = file('offline');
  const id0 = await establishIdentity(config(api, { credentialsFile: path }));
  id0.stop();
  const jwt = readCredentialFile(path)!.jwt;
  await api.close();
  const down = `http://127.0.0.1:${await freePort()}`;
  const id = await establishIdentity(config({ url: down }, { credentialsFile: path, nebulaUrl: down, joinToken: undefined }));
  assert.is(id.jwt(), jwt, 'goes on with the JWT it has');
  id.stop();
  // Later, with the clock past its expiry:
  await rejects(
    establishIdentity(config({ url: down }, { credentialsFile: path, nebulaUrl: down, now: () => Date.now() + 2 * 3_600_000 })),
    (err: Error) => err instanceof CredentialExpiredError && /expired at .* could not be renewed/.test(err.message),
  );
});

test('every call has a deadline: an API that never answers fails the join with a retryable error (after its tries)', async () => {
  const api = await startFakeApi();
  api.mode = 'hang';
  try {
    await rejects(
      establishIdentity(config(api, { credentialsFile: file('hang'), timeoutMs: 300, joinAttempts: 2 })),
      (err: Error) => err instanceof ControlPlaneUnavailableError && err.retryable && /no answer within 0.3 s/.test(err.message),
    );
  } finally {
    await api.close();
  }
});

test('a join the API answers 503 (busy) is tried again, and joins once it is taken; past its tries, the error', async () => {
  const api = await startFakeApi();
  try {
    api.busyJoins = 2;
    const id = await establishIdentity(config(api, { credentialsFile: file('busy') }));
    assert.is(api.joins.length, 3, 'two 503s, then the join');
    assert.ok(readCredentialFile(file('busy')) !== null);
    id.stop();
    const other = await startFakeApi();
    try {
      other.busyJoins = 10;
      await rejects(
        establishIdentity(config(other, { credentialsFile: file('busy-out'), joinAttempts: 3 })),
        (err: Error) => err instanceof ControlPlaneUnavailableError && /503|database is not answering/.test(err.message),
      );
      assert.is(other.joins.length, 3, 'three tries');
      assert.is(readCredentialFile(file('busy-out')), null, 'nothing written');
    } finally {
      await other.close();
    }
  } finally {
    await api.close();
  }
});

test('renewed in the background at two thirds of its lifetime; the newest JWT is what a reconnect reads', async () => {
  const api = await startFakeApi();
  api.lifetimeMs = 3_000;
  try {
    const path = file('background');
    const id = await establishIdentity(config(api, { credentialsFile: path }));
    const first = id.jwt();
    id.startRenewing();
    await waitFor('a renewal', () => api.renews.length >= 1, 10_000);
    await waitFor('the new JWT in use', () => id.jwt() !== first, 5_000);
    assert.is(readCredentialFile(path)?.jwt, id.jwt());
    id.stop();
  } finally {
    await api.close();
  }
});

test('a JWT that expires while connected: renewed before its expiry, the server closes the old session and the reconnect uses the new JWT', async () => {
  const nats = await startNatsServer();
  const api = await startFakeApi(nats.keys);
  api.lifetimeMs = 3_000;
  try {
    const id = await establishIdentity(config(api, { credentialsFile: file('reconnect'), apps: [] }));
    const first = id.jwt();
    id.startRenewing();
    const nc = await connect({ ...hostConnectOptions(id, { servers: [nats.url] }), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    let reconnects = 0;
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'reconnect') reconnects += 1;
    })();
    await waitFor('the first JWT to expire and the client to reconnect', () => reconnects >= 1, 10_000);
    assert.is.not(id.jwt(), first, 'renewed');
    assert.ok((jwtExpiry(first)?.getTime() ?? 0) <= Date.now(), 'the first JWT has expired');
    nc.publish(subjects.heartbeat('h1'), '{}');
    await nc.flush(); // the connection works with the renewed JWT
    assert.not.ok(nc.isClosed());
    await nc.close();
    id.stop();
  } finally {
    await api.close();
    await nats.cleanup();
  }
});

test('renewalDelayMs: at two thirds of the lifetime, never negative; retryDelayMs doubles up to its cap', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: -1e9, max: 2e9 }), (received, lifetime, offset) => {
      const d = renewalDelayMs({ receivedAt: received, expiresAt: received + lifetime, now: received + offset });
      return d >= 0 && d <= Math.max(0, (lifetime * 2) / 3 - offset) + 1e-6 && (offset > (lifetime * 2) / 3 ? d === 0 : true);
    }),
  );
  assert.is(renewalDelayMs({ receivedAt: 0, expiresAt: 3_000, now: 0 }), 2_000);
  assert.equal(
    [1, 2, 3, 4, 5, 50].map((n) => retryDelayMs(n, 100, 1_000)),
    [100, 200, 400, 800, 1_000, 1_000],
  );
});

test('joinRetryDelayMs: between half and all of the backoff, and spread: a fleet does not come back in one instant', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 60 }),
      fc.integer({ min: 1, max: 5_000 }),
      fc.integer({ min: 1, max: 60_000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (attempt, base, max, r) => {
        const full = retryDelayMs(attempt, base, max);
        const d = joinRetryDelayMs(attempt, base, max, r);
        return d >= Math.floor(full / 2) && d <= full;
      },
    ),
  );
  // 1,000 hosts turned away at once: their next tries spread over the second half of the backoff.
  const delays = Array.from({ length: 1_000 }, (_, i) => joinRetryDelayMs(3, 1_000, 15_000, i / 1_000));
  assert.is(Math.min(...delays), 2_000);
  assert.ok(Math.max(...delays) >= 3_990);
  assert.ok(new Set(delays.map((d) => Math.floor(d / 100))).size >= 20, 'spread over at least 20 slots of 100 ms');
});

test("the host's connection: its own inbox prefix, and no plaintext outside loopback", () => {
  const id = { hostId: 'h1', jwt: () => 'jwt', seed: () => new Uint8Array() };
  const local = hostConnectOptions(id, { servers: ['nats://127.0.0.1:4222'] });
  assert.is(local.inboxPrefix, '_INBOX_h1');
  assert.is(local.tls, undefined);
  assert.ok(local.authenticator);
  assert.throws(() => hostConnectOptions(id, { servers: ['nats://10.0.0.5:4222'] }), /outside loopback without TLS/);
  assert.equal(hostConnectOptions(id, { servers: ['tls://nats.example:4222'] }).tls, {});
  assert.equal(hostConnectOptions(id, { servers: ['nats://10.0.0.5:4222'], tlsCaFile: '/etc/ca.pem' }).tls, { caFile: '/etc/ca.pem' });
});

test('describeApiError: the 4xx JSON shapes of the API in one line', () => {
  assert.is(describeApiError(401, '{"error":"invalid join token","message":"used"}'), 'HTTP 401: invalid join token: used');
  assert.is(describeApiError(400, '{"errors":{"apps":["unknown app x"]}}'), 'HTTP 400: apps: unknown app x');
  assert.is(describeApiError(404, 'not json'), 'HTTP 404: not json');
});

test.run();
