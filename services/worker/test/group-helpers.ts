import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { hostPermissions, issueUserJwt, keyFromSeed, SIGNATURE_HEADER, signMessage, verifyMessage } from '@nebula/bus-auth';
import {
  type GroupCronJob,
  type GroupMessage,
  type GroupResult,
  groupMessageId,
  groupResultSchema,
  groupSubjects,
  type Heartbeat,
  heartbeatSchema,
  type PruneReport,
  pruneReportSchema,
} from '@nebula/contracts';
import { DEFAULT_HOST_CONSUMER_TUNING, ensureHostConsumers, ensureHostGroupConsumer, ensureStreams } from '@nebula/messaging';
import type { TestNatsServer } from '@nebula/test-kit';
import { hostConnectOptions } from '../src/identity/bus-connection.ts';
import { ControlPlaneRefusedError } from '../src/identity/control-plane-client.ts';
import type { TestBus } from './helpers.ts';

/**
 * A host that follows a device group, with the control plane's side of its renewal played by the
 * test: `provision(apps)` makes the app consumers and the group consumer (as the API's renewal does)
 * and issues a new JWT with `hostPermissions(host, apps, group)`; the connection presents the newest
 * JWT at each connect (as a joined worker's does), so the new rights apply after a reconnect. A
 * token restricted to `allowed` apps refuses a renewal naming another, as the API does.
 */
export interface GroupTestHost {
  nc: NatsConnection;
  controlPlaneKey: string;
  hostKey: KeyPair;
  publicKey: string;
  provision(apps: readonly string[]): Promise<void>;
  /** The app sets asked for, in order. */
  provisions: string[][];
  close(): Promise<void>;
}

export async function startGroupHost(
  nats: TestNatsServer,
  bus: TestBus,
  hostId: string,
  group: string,
  opts: { apps?: readonly string[]; allowed?: readonly string[]; ackWaitMs?: number } = {},
): Promise<GroupTestHost> {
  const key = createUser();
  const seed = key.getSeed();
  const apiJsm = await jetstreamManager(bus.api);
  const tuning = { ...DEFAULT_HOST_CONSUMER_TUNING, ...(opts.ackWaitMs !== undefined ? { ackWaitMs: opts.ackWaitMs } : {}) };
  let jwt = '';
  async function grant(apps: readonly string[]): Promise<void> {
    await ensureHostConsumers(apiJsm, hostId, apps, tuning);
    await ensureHostGroupConsumer(apiJsm, hostId, group, tuning);
    jwt = await issueUserJwt(nats.keys, {
      name: hostId,
      publicKey: key.getPublicKey(),
      permissions: hostPermissions(hostId, apps, group),
      expiresAt: new Date(Date.now() + 3_600_000),
    });
  }
  await grant(opts.apps ?? []);
  const nc = await connect({
    ...hostConnectOptions({ hostId, jwt: () => jwt, seed: () => seed }, { servers: [nats.url] }),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
  });
  const provisions: string[][] = [];
  return {
    nc,
    controlPlaneKey: bus.controlPlaneKey,
    hostKey: keyFromSeed(new TextDecoder().decode(seed)),
    publicKey: key.getPublicKey(),
    provisions,
    close: () => nc.close().catch(() => undefined),
    async provision(apps) {
      provisions.push([...apps]);
      const outside = opts.allowed === undefined ? [] : apps.filter((a) => !opts.allowed?.includes(a)).sort();
      if (outside.length > 0) {
        throw new ControlPlaneRefusedError(
          `POST renew was refused: HTTP 403: apps not allowed: the join token does not allow the apps ${outside.join(', ')}`,
          403,
        );
      }
      await grant(apps);
    },
  };
}

/** The streams of groups (the API's) and of host events (the notifier's). */
export async function createGroupStreams(nc: NatsConnection): Promise<void> {
  await ensureStreams(await jetstreamManager(nc), ['groups', 'events']);
}

export function groupMessage(
  group: string,
  seq: number,
  apps: string[],
  o: { incarnation?: number; prune_id?: number; deleted?: boolean; cron_jobs?: GroupCronJob[] } = {},
): GroupMessage {
  const incarnation = o.incarnation ?? 1;
  return {
    v: 1,
    device_group: group,
    incarnation,
    seq,
    device_group_id: seq,
    prune_id: o.prune_id ?? 1,
    deleted: o.deleted ?? false,
    apps: o.deleted ? [] : apps,
    cron_jobs: o.deleted ? [] : (o.cron_jobs ?? []),
    rollout_id: `rollout-group-${group}-${incarnation}-${seq}`,
    created_at: new Date().toISOString(),
    actor: 'test',
  };
}

/** Publishes a group message as the API's relay does (GROUPS, msgID = rollout id, signed); `key: null`: unsigned; another key: a forgery. */
export async function publishGroup(bus: Pick<TestBus, 'api' | 'signingKey'>, m: GroupMessage, opts: { key?: KeyPair | null } = {}): Promise<void> {
  const subject = groupSubjects.group(m.device_group);
  const body = new TextEncoder().encode(JSON.stringify(m));
  const h = headers();
  const key = opts.key === undefined ? bus.signingKey : opts.key;
  if (key !== null) h.set(SIGNATURE_HEADER, signMessage(key, subject, body));
  await jetstream(bus.api).publish(subject, body, { msgID: groupMessageId(m), headers: h });
}

/** Group results, prune reports and heartbeats of one host, each noted with whether it verifies with the host's key. */
export function collectHostEvents(nc: NatsConnection, hostId: string, publicKey: () => string) {
  const results: GroupResult[] = [];
  const prunes: PruneReport[] = [];
  const heartbeats: Heartbeat[] = [];
  // Checked when read: the first heartbeat may arrive before the test knows the host's key.
  const received: Array<{ subject: string; data: Uint8Array; signature: string | undefined }> = [];
  const subs = [nc.subscribe(`events.${hostId}.>`), nc.subscribe(`hosts.${hostId}`)];
  for (const sub of subs) {
    void (async () => {
      for await (const m of sub) {
        received.push({ subject: m.subject, data: m.data, signature: m.headers?.get(SIGNATURE_HEADER) });
        if (m.subject.startsWith(`events.${hostId}.group.`)) results.push(groupResultSchema.parse(m.json()));
        else if (m.subject.startsWith(`events.${hostId}.prune.`)) prunes.push(pruneReportSchema.parse(m.json()));
        else if (m.subject === `hosts.${hostId}`) heartbeats.push(heartbeatSchema.parse(m.json()));
      }
    })();
  }
  return {
    results,
    prunes,
    heartbeats,
    /** Subjects of the messages not signed by the host's key. */
    get unverified(): string[] {
      return received.filter((m) => !verifyMessage(publicKey(), m.subject, m.data, m.signature)).map((m) => m.subject);
    },
    subscribed: nc.flush(),
    stop: () => {
      for (const s of subs) s.unsubscribe();
    },
  };
}
