import { randomBytes } from 'node:crypto';
import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { hostPermissions, issueUserJwt, keyFromSeed, SIGNATURE_HEADER, signMessage, verifyMessage } from '@nebula/bus-auth';
import { type AppAction, type AppConfigInput, type AppMessage, appConfigSchema, appMessageId, type Result, resultSchema, subjects } from '@nebula/contracts';
import { DEFAULT_HOST_CONSUMER_TUNING, ensureHostConsumers, ensureStreams } from '@nebula/messaging';
import { createLogger } from '@nebula/service-kit';
import { type TestNatsServer, waitFor } from '@nebula/test-kit';
import { writeCredentialFile } from '../src/identity/credential-file.ts';

/** Quiet unless TEST_LOG=debug (or info...) is set. */
export const log = createLogger('worker-test', process.env.TEST_LOG ?? 'silent');

export const suffix = () => randomBytes(3).toString('hex');

/** Short intervals and deadlines for workers in tests (the defaults are seconds to minutes). */
export const FAST_WORKER = {
  heartbeatIntervalMs: 200,
  ackWaitMs: 2_000,
  fetchExpiresMs: 1_000,
  retryBaseMs: 100,
  retryMaxMs: 400,
  rollSettleMs: 0,
  /** Short, but on: the fake runtime's containers that fail do so at start, seen at the first poll. */
  settleMs: 300,
  pollMs: 5,
  healthCheckIntervalMs: 100,
} as const;

export function envelope(app: string, revision: number, action: AppAction, config: AppConfigInput, incarnation = 1): AppMessage {
  return {
    v: 1,
    app,
    incarnation,
    revision,
    action,
    config: appConfigSchema.parse(config),
    rollout_id: `rollout-${app}-${incarnation}-${revision}`,
    created_at: new Date().toISOString(),
    actor: 'test',
  };
}

/**
 * The bus as the control plane sees it, for tests of the worker alone: the API's connection (it
 * publishes and signs app messages, and stands in for the control plane's join and renewal by making
 * a host's consumers), an admin connection (reads streams, listens to results and heartbeats) and
 * hosts connected with credentials of their own, as a joined worker is.
 */
export interface TestBus {
  admin: NatsConnection;
  api: NatsConnection;
  /** The control plane's message key, as a host pins it at join. */
  controlPlaneKey: string;
  signingKey: KeyPair;
  /** What createWorker needs of a host (its connection, keys, and a provision that makes its consumers). */
  host(hostId: string, apps: readonly string[], options?: { ackWaitMs?: number | undefined }): Promise<TestHost>;
  close(): Promise<void>;
}

export interface TestHost {
  nc: NatsConnection;
  controlPlaneKey: string;
  hostKey: KeyPair;
  /** The host's public key: its results and heartbeats verify with it. */
  publicKey: string;
  provision(apps: readonly string[]): Promise<void>;
  /** How many times the worker asked for its consumers. */
  provisions(): number;
}

export async function startTestBus(nats: TestNatsServer): Promise<TestBus> {
  const admin = await connect(nats.connectOptions('admin'));
  const api = await connect(nats.connectOptions('api'));
  const apiJsm = await jetstreamManager(api);
  const signingKey = keyFromSeed(nats.keys.message_signing_seed);
  const hosts: NatsConnection[] = [];
  return {
    admin,
    api,
    controlPlaneKey: signingKey.getPublicKey(),
    signingKey,
    async host(hostId, apps, options = {}) {
      const creds = await nats.hostCreds(hostId, apps);
      const nc = await connect(nats.connectOptions(creds));
      hosts.push(nc);
      const tuning = { ...DEFAULT_HOST_CONSUMER_TUNING, ...(options.ackWaitMs !== undefined ? { ackWaitMs: options.ackWaitMs } : {}) };
      let provisions = 0;
      return {
        nc,
        controlPlaneKey: signingKey.getPublicKey(),
        hostKey: keyFromSeed(creds.seed),
        publicKey: creds.publicKey,
        async provision(a) {
          provisions += 1;
          await ensureHostConsumers(apiJsm, hostId, a, tuning);
        },
        provisions: () => provisions,
      };
    },
    async close() {
      for (const c of [...hosts, api, admin]) await c.close().catch(() => undefined);
    },
  };
}

/** The streams, as their owners (the API: APPS; the notifier: RESULTS, HOSTS) create them: a worker only waits for them. */
export async function createStreams(nc: NatsConnection): Promise<void> {
  await ensureStreams(await jetstreamManager(nc), ['apps', 'results', 'hosts']);
}

/** Publishes a revision the way the API does (stream APPS, msgID per revision, signed by the control plane key). */
export async function publishApp(bus: Pick<TestBus, 'api' | 'signingKey'>, m: AppMessage, opts: { key?: KeyPair | null } = {}): Promise<void> {
  const js: JetStreamClient = jetstream(bus.api);
  const subject = subjects.app(m.app);
  const body = new TextEncoder().encode(JSON.stringify(m));
  const h = headers();
  // `key: null`: unsigned; another key: a forgery.
  const key = opts.key === undefined ? bus.signingKey : opts.key;
  if (key !== null) h.set(SIGNATURE_HEADER, signMessage(key, subject, body));
  await js.publish(subject, body, { msgID: appMessageId(m), headers: h });
}

/** Collects every result published for an app (subscribe before publishing), noting whether each verifies with `hostKeys`. */
export function collectResults(nc: NatsConnection, app: string, hostKeys: Record<string, string> = {}) {
  // Subscribed once the server has it: a result published before would be missed. (A connection
  // lost meanwhile, as in the NATS restart test, resubscribes on reconnect: not an error here.)
  const subscribed = nc.flush().catch(() => undefined);
  const got: Result[] = [];
  const verified: boolean[] = [];
  const sub = nc.subscribe(`results.${app}.>`);
  void (async () => {
    for await (const m of sub) {
      const r = resultSchema.parse(m.json());
      const key = hostKeys[r.host];
      verified.push(key !== undefined && verifyMessage(key, m.subject, m.data, m.headers?.get(SIGNATURE_HEADER)));
      got.push(r);
    }
  })();
  return {
    all: got,
    /** Per result (same order as `all`): signed by its host's key, as given. */
    verified,
    /** Waits for the result of a revision (any status unless given). */
    subscribed,
    async waitFor(revision: number, status?: Result['status'], timeoutMs = 30_000): Promise<Result> {
      await subscribed;
      return waitFor(
        `result of ${app} revision ${revision}${status ? ` (${status})` : ''}`,
        () => got.find((r) => r.revision === revision && (status === undefined || r.status === status)),
        timeoutMs,
      );
    },
    stop: () => sub.unsubscribe(),
  };
}

/** Publishes any body on `apps.<app>` as the API, signed (or not: `key: null`): for messages that do not parse. */
export async function publishRaw(bus: Pick<TestBus, 'api' | 'signingKey'>, app: string, text: string, opts: { key?: KeyPair | null } = {}): Promise<void> {
  const subject = subjects.app(app);
  const body = new TextEncoder().encode(text);
  const h = headers();
  const key = opts.key === undefined ? bus.signingKey : opts.key;
  if (key !== null) h.set(SIGNATURE_HEADER, signMessage(key, subject, body));
  await jetstream(bus.api).publish(subject, body, { headers: h });
}

/**
 * A credentials file as a joined host has it (key seed, a JWT for its apps, the pinned control plane
 * key), for the worker run as a process; `nebulaUrl` need not answer while the JWT is valid.
 */
export async function writeHostCredentials(
  nats: TestNatsServer,
  path: string,
  host: { hostId: string; apps: readonly string[]; nebulaUrl: string; expiresAt?: Date },
): Promise<{ publicKey: string }> {
  const key = createUser();
  const expiresAt = host.expiresAt ?? new Date(Date.now() + 3_600_000);
  const jwt = await issueUserJwt(nats.keys, {
    name: host.hostId,
    publicKey: key.getPublicKey(),
    permissions: hostPermissions(host.hostId, host.apps),
    expiresAt,
  });
  writeCredentialFile(path, {
    v: 1,
    host_id: host.hostId,
    nebula_url: host.nebulaUrl,
    seed: new TextDecoder().decode(key.getSeed()),
    jwt,
    expires_at: expiresAt.toISOString(),
    received_at: new Date().toISOString(),
    control_plane_key: keyFromSeed(nats.keys.message_signing_seed).getPublicKey(),
    apps: [...host.apps],
  });
  return { publicKey: key.getPublicKey() };
}
