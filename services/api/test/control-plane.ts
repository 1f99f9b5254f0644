import type { NatsConnection } from '@nats-io/transport-node';
import type { ControlPlaneKeys } from '@nebula/bus-auth';
import { createNebulaClient, type NebulaClient } from '@nebula/client';
import { createDb, createTestDatabase, type Database, type Kysely } from '@nebula/db';
import { createNotifier, type Notifier, type NotifierOptions } from '@nebula/notifier';
import { type ApiServer, type ApiServerOptions, createApiServer } from '../src/index.ts';
import { ADMIN, defaultAuth, silentLog } from './helpers.ts';

/**
 * The API and the notifier in this process, on a database of their own, over the NATS connections
 * the test gives them (a cluster's, a hub's): what the bus tests with many hosts (nats-cluster,
 * nats-regions) run against. `close()` stops both and drops the database.
 */
export interface InProcessControlPlane {
  db: Kysely<Database>;
  api: ApiServer;
  notifier: Notifier;
  nebula: NebulaClient;
  close(): Promise<void>;
}

export async function startControlPlane(o: {
  apiNc: NatsConnection;
  notifierNc: NatsConnection;
  keys: ControlPlaneKeys;
  hosts: ApiServerOptions['hosts'];
  notifier?: NotifierOptions;
}): Promise<InProcessControlPlane> {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url, 5);
  const api = await createApiServer({
    db,
    databaseUrl: tdb.url,
    nc: o.apiNc,
    log: silentLog,
    auth: defaultAuth,
    maxBodyBytes: 64 * 1024,
    relay: { lockPollMs: 100, pollMs: 200, maxBackoffMs: 300 },
    keys: o.keys,
    hosts: o.hosts,
  });
  const notifier = createNotifier({ db, nc: o.notifierNc, log: silentLog, options: { flushIntervalMs: 50, retryDelayMs: 200, ...o.notifier } });
  await notifier.start();
  return {
    db,
    api,
    notifier,
    nebula: createNebulaClient({ url: api.url, username: ADMIN.user, password: ADMIN.password }),
    async close() {
      await notifier.stop().catch(() => undefined);
      await api.close().catch(() => undefined);
      await db.destroy();
      await tdb.drop();
    },
  };
}
