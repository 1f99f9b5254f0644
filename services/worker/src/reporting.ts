import type { JetStreamClient } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import { headers } from '@nats-io/transport-node';
import { SIGNATURE_HEADER, signMessage } from '@nebula/bus-auth';
import {
  type AppMessage,
  type ContainerState,
  type CronRunReport,
  cronRunReportSchema,
  type GroupResult,
  groupResultSchema,
  groupSubjects,
  type Heartbeat,
  heartbeatSchema,
  MESSAGE_VERSION,
  type PruneReport,
  pruneReportSchema,
  type Result,
  resultSchema,
  stableHash,
  subjects,
} from '@nebula/contracts';
import { encode } from '@nebula/messaging';
import { LABELS, type ObservedContainer } from './runtime/container-runtime.ts';
import { naturalCompare } from './text-order.ts';

/** What a result says about the containers of an app. */
export function containerStates(observed: readonly ObservedContainer[], app: string): ContainerState[] {
  return observed
    .filter((c) => c.labels[LABELS.app] === app)
    .sort((a, b) => naturalCompare(a.name, b.name))
    .map((c) => ({ id: c.id, name: c.name, state: c.state, ...(c.health ? { health: c.health } : {}), image: c.imageId }));
}

export interface ResultInput {
  message: Pick<AppMessage, 'app' | 'incarnation' | 'revision' | 'rollout_id' | 'action'>;
  host: string;
  status: Result['status'];
  error?: string | null;
  imageDigest?: string | null;
  containers?: ContainerState[];
  pullMs?: number;
  applyMs?: number;
}

export function buildResult(r: ResultInput): Result {
  return resultSchema.parse({
    v: MESSAGE_VERSION,
    app: r.message.app,
    host: r.host,
    incarnation: r.message.incarnation,
    revision: r.message.revision,
    rollout_id: r.message.rollout_id,
    action: r.message.action,
    status: r.status,
    error: r.error ?? null,
    image_digest: r.imageDigest ?? null,
    containers: r.containers ?? [],
    durations_ms: { pull: Math.max(0, Math.round(r.pullMs ?? 0)), apply: Math.max(0, Math.round(r.applyMs ?? 0)) },
    at: new Date().toISOString(),
  });
}

/**
 * The JetStream message id of a result: which host, app and revision, its outcome (status and a short
 * hash of the error) and its attempt (when the worker built it, by its own clock: it orders this
 * host's results only, and is unique per attempt). The client re-sending one publish (a lost ack) is a
 * duplicate the server drops; a second failure, with a new cause or the same one on a later attempt,
 * is a message of its own, so the notifier sees it (it keeps the newest per rollout and host).
 */
export function resultMessageId(result: Result): string {
  const outcome = result.error === null ? result.status : `${result.status}-${stableHash(result.error).slice(0, 8)}`;
  return `${result.host}:${result.app}:${result.incarnation}:${result.revision}:${outcome}:${Date.parse(result.at)}`;
}

const utf8 = new TextEncoder();

/** The host's signature over subject and body: the notifier drops what does not verify with its registered key. */
function signedHeaders(hostKey: KeyPair, subject: string, body: Uint8Array) {
  const h = headers();
  h.set(SIGNATURE_HEADER, signMessage(hostKey, subject, body));
  return h;
}

export async function publishResult(js: JetStreamClient, hostKey: KeyPair, result: Result): Promise<void> {
  const subject = subjects.result(result.app, result.host);
  const body = utf8.encode(encode(result));
  await js.publish(subject, body, { msgID: resultMessageId(result), headers: signedHeaders(hostKey, subject, body) });
}

export async function publishHeartbeat(js: JetStreamClient, hostKey: KeyPair, hb: Heartbeat): Promise<void> {
  const subject = subjects.heartbeat(hb.host);
  const body = utf8.encode(encode(heartbeatSchema.parse(hb)));
  await js.publish(subject, body, { headers: signedHeaders(hostKey, subject, body) });
}

/**
 * A host's events about its device group (`events.<host>.group|cron|prune.<name>`), signed like its
 * results: the notifier drops what does not verify with the host's key or names another host. The
 * message id makes a re-sent publish (a lost ack) a duplicate the server drops.
 */
async function publishEvent(js: JetStreamClient, hostKey: KeyPair, subject: string, body: Uint8Array, msgID: string): Promise<void> {
  await js.publish(subject, body, { msgID, headers: signedHeaders(hostKey, subject, body) });
}

export async function publishGroupResult(js: JetStreamClient, hostKey: KeyPair, result: GroupResult): Promise<void> {
  const r = groupResultSchema.parse(result);
  const id = `${r.host}:group:${r.device_group}:${r.incarnation}:${r.seq}:${r.status}:${Date.parse(r.at)}`;
  await publishEvent(js, hostKey, groupSubjects.groupResult(r.host, r.device_group), utf8.encode(encode(r)), id);
}

export async function publishPruneReport(js: JetStreamClient, hostKey: KeyPair, report: PruneReport): Promise<void> {
  const r = pruneReportSchema.parse(report);
  const id = `${r.host}:prune:${r.device_group}:${r.prune_id}:${Date.parse(r.at)}`;
  await publishEvent(js, hostKey, groupSubjects.prune(r.host, r.device_group), utf8.encode(encode(r)), id);
}

export async function publishCronRunReport(js: JetStreamClient, hostKey: KeyPair, report: CronRunReport): Promise<void> {
  const r = cronRunReportSchema.parse(report);
  const id = `${r.host}:cron:${r.job}:${r.container}:${Date.parse(r.at)}`;
  await publishEvent(js, hostKey, groupSubjects.cronRun(r.host, r.job), utf8.encode(encode(r)), id);
}
