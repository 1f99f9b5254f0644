/**
 * For the notifier's tests: a real nats-server (secured, as users run it) and a throwaway PostgreSQL
 * database, plus plain publishers that stand in for workers (heartbeats and results, shaped as the
 * contracts say) and rollouts inserted as the API would.
 *
 * The stand-in hosts share one connection (an admin user of the test server: permissions are not
 * what these tests are about; `security.test.ts` publishes through each host's own credential), but
 * each host has its own key, registered in host_credentials as the API does at join, and signs each
 * result and heartbeat with it: the notifier checks them for real.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { SIGNATURE_HEADER } from '@nebula/bus-auth';
import { type Heartbeat, type Result, streams, subjects } from '@nebula/contracts';
import { createTestDatabase, type Database, type Kysely, kyselyFor, migrateToLatest } from '@nebula/db';
import { ensureStream } from '@nebula/messaging';
import { type HostSigner, hostSigner, startNatsServer, type TestNatsServer } from '@nebula/test-kit';
import { createNotifier, type Notifier, type NotifierOptions } from '../src/index.ts';
import { log } from './fleet-log.ts';

export interface Fleet {
  server: TestNatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  db: Kysely<Database>;
  dbUrl: string;
  /** Starts a notifier with a NATS connection of its own, as a separate replica would have. */
  startNotifier(options?: NotifierOptions): Promise<Notifier>;
  close(): Promise<void>;
}

export { log };

/** A stand-in host's key: its public key is in host_credentials, it signs what the host publishes. */
export interface StandInHost {
  hostId: string;
  publicKey: string;
  seed: string;
  sign: HostSigner;
}

// One fleet per test file: the publishers below find the database to register hosts in here.
let registered: { db: Kysely<Database>; hosts: Map<string, Promise<StandInHost>>; pending: StandInHost[]; flush: Promise<void> | null } | null = null;

/** Inserts host_credentials rows as the API does at join (for `apps`; expiring in a day). */
export async function registerHostKeys(db: Kysely<Database>, rows: Array<{ hostId: string; publicKey: string; apps?: string[] }>): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('host_credentials')
    .values(rows.map((r) => ({ host_id: r.hostId, public_key: r.publicKey, apps: r.apps ?? [], expires_at: new Date(Date.now() + 86_400_000) })))
    .onConflict((oc) => oc.column('host_id').doUpdateSet((eb) => ({ public_key: eb.ref('excluded.public_key'), revoked_at: null })))
    .execute();
}

/** The stand-in host of that id: made on first use, and registered with the others of the same tick in one insert. */
export function standInHost(hostId: string): Promise<StandInHost> {
  if (!registered) throw new Error('startFleet() first');
  const r = registered;
  let h = r.hosts.get(hostId);
  if (!h) {
    const kp = createUser();
    const seed = new TextDecoder().decode(kp.getSeed());
    const host = { hostId, publicKey: kp.getPublicKey(), seed, sign: hostSigner(seed) };
    r.pending.push(host);
    r.flush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const batch = r.pending.splice(0);
      r.flush = null;
      await registerHostKeys(r.db, batch);
    });
    h = r.flush.then(() => host);
    r.hosts.set(hostId, h);
  }
  return h;
}

export async function startFleet(): Promise<Fleet> {
  const server = await startNatsServer();
  const tdb = await createTestDatabase();
  const db = kyselyFor<Database>(tdb.url);
  await migrateToLatest(db);
  registered = { db, hosts: new Map(), pending: [], flush: null };
  const nc = await connect(server.connectOptions('admin'));
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, 'results');
  await ensureStream(jsm, 'hosts');
  const started: Notifier[] = [];
  const extra: NatsConnection[] = [];
  return {
    server,
    nc,
    js: jetstream(nc),
    jsm,
    db,
    dbUrl: tdb.url,
    async startNotifier(options) {
      const own = await connect(server.connectOptions('notifier'));
      extra.push(own);
      const n = createNotifier({ db, nc: own, log, options });
      started.push(n);
      await n.start();
      return n;
    },
    async close() {
      await Promise.all(started.map((n) => n.stop()));
      await Promise.all(extra.map((c) => c.close()));
      await nc.close();
      registered = null;
      await db.destroy();
      await tdb.drop();
      await server.cleanup();
    },
  };
}

export const suffix = () => randomBytes(3).toString('hex');
export const hostIds = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);

export function heartbeat(host: string, apps: string[], at = new Date(), intervalSeconds = 5, instance?: string): Heartbeat {
  return {
    v: 1,
    host,
    apps: apps.map((app) => ({ app, incarnation: 1, revision: 1, containers: [{ id: `${host}-${app}`, name: `${app}-0`, state: 'running' }] })),
    cores: 4,
    memory_mb: 8192,
    worker_version: '0.1.0-test',
    interval_seconds: intervalSeconds,
    ...(instance === undefined ? {} : { instance }),
    at: at.toISOString(),
  };
}

export interface RolloutRef {
  id: string;
  app: string;
  incarnation: number;
  revision: number;
}

export async function createRollout(db: Kysely<Database>, app: string, expected: string[], incarnation = 1, revision = 1): Promise<RolloutRef> {
  const id = randomUUID();
  await db
    .insertInto('rollouts')
    .values({ id, app, incarnation: String(incarnation), revision, action: 'update', expected_hosts: expected, published_at: new Date() })
    .execute();
  return { id, app, incarnation, revision };
}

export function result(r: RolloutRef, host: string, status: Result['status'] = 'applied', at = new Date(), applyMs = 100): Result {
  return {
    v: 1,
    app: r.app,
    host,
    incarnation: r.incarnation,
    revision: r.revision,
    rollout_id: r.id,
    action: 'update',
    status,
    error: status === 'failed' ? `failed on ${host}` : null,
    image_digest: `sha256:${'a'.repeat(64)}`,
    containers: [{ id: `${host}-c`, name: `${r.app}-0`, state: 'running' }],
    durations_ms: { pull: 10, apply: applyMs },
    at: at.toISOString(),
  };
}

/**
 * Publishes `body` on `subject` signed by `host` (default: the host the subject names), as that host
 * would. Without a message id, so a repeat is stored again: a real duplicate for the consumer.
 */
export async function publishSigned(js: JetStreamClient, subject: string, body: string | Uint8Array, host = subject.split('.').at(-1)!): Promise<void> {
  const data = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const h = headers();
  h.set(SIGNATURE_HEADER, (await standInHost(host)).sign(subject, data));
  await js.publish(subject, data, { headers: h });
}

export async function publishResult(js: JetStreamClient, res: Result): Promise<void> {
  await publishSigned(js, subjects.result(res.app, res.host), JSON.stringify(res));
}

export async function publishHeartbeat(js: JetStreamClient, hb: Heartbeat): Promise<void> {
  await publishSigned(js, subjects.heartbeat(hb.host), JSON.stringify(hb));
}

/** Nothing left to deliver and nothing delivered but unacked. */
export async function drained(jsm: JetStreamManager, stream: 'results' | 'hosts', durable: string): Promise<boolean> {
  const info = await jsm.consumers.info(streams[stream].name, durable);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

export { randomUUID };
