/**
 * For the notifier's tests: a real nats-server and a throwaway PostgreSQL database, plus plain
 * publishers that stand in for workers (heartbeats and results, shaped as the contracts say) and
 * rollouts inserted as the API would.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type Heartbeat, type Result, streams, subjects } from '@nebula/contracts';
import { createTestDatabase, type Database, type Kysely, kyselyFor, migrateToLatest } from '@nebula/db';
import { ensureStream } from '@nebula/messaging';
import { createLogger } from '@nebula/service-kit';
import { startNatsServer, type TestNatsServer } from '@nebula/test-kit';
import { createNotifier, type Notifier, type NotifierOptions } from '../src/index.ts';

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

export const log = createLogger('notifier-test', process.env.LOG_LEVEL ?? 'silent');

export async function startFleet(): Promise<Fleet> {
  const server = await startNatsServer();
  const tdb = await createTestDatabase();
  const db = kyselyFor<Database>(tdb.url);
  await migrateToLatest(db);
  const nc = await connect({ servers: server.url });
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
      const own = await connect({ servers: server.url });
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

/** Publishes without a message id, so a repeat is stored again: a real duplicate for the consumer. */
export async function publishResult(js: JetStreamClient, res: Result): Promise<void> {
  await js.publish(subjects.result(res.app, res.host), JSON.stringify(res));
}

export async function publishHeartbeat(js: JetStreamClient, hb: Heartbeat): Promise<void> {
  await js.publish(subjects.heartbeat(hb.host), JSON.stringify(hb));
}

/** Nothing left to deliver and nothing delivered but unacked. */
export async function drained(jsm: JetStreamManager, stream: 'results' | 'hosts', durable: string): Promise<boolean> {
  const info = await jsm.consumers.info(streams[stream].name, durable);
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

export { randomUUID };
