import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from '@nats-io/transport-node';
import { busConnectOptions, busDirectoryPaths } from '@nebula/bus-auth';

/** The local stack's bus credentials (made by tools/stack.sh up; see BUS_DIR there). */
export function stackBusDir(): ReturnType<typeof busDirectoryPaths> {
  return busDirectoryPaths(process.env.NEBULA_BUS_DIR ?? '/var/lib/nebula/local-bus');
}

/** Connection options for the stack's NATS as one of its identities. */
export function stackNatsOptions(who: 'admin' | 'api' | 'notifier', url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222'): ConnectionOptions {
  const d = stackBusDir();
  const file = { admin: d.adminCreds, api: d.apiCreds, notifier: d.notifierCreds }[who];
  return busConnectOptions({ servers: [url], creds: readFileSync(file, 'utf8'), name: `stack-${who}` });
}
