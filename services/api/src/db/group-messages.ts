import { randomUUID } from 'node:crypto';
import { type GroupCronJob, type GroupMessage, groupMessageId, groupMessageSchema, groupSubjects, MESSAGE_VERSION } from '@nebula/contracts';
import { type Database, OUTBOX_CHANNEL, onlineSql, sql, type Transaction } from '@nebula/db';
import { AppNotFoundError, CronJobNotFoundError, MessageTooLargeError } from '../errors.ts';
import { publishedSize } from '../publisher.ts';
import type { GroupState } from './device-groups.ts';

/**
 * A device group's message and the rollout that tracks it, written in the transaction of the change
 * that made it (the relay signs and publishes the outbox row; its msg id is the rollout id):
 *
 *   group row (seq + 1, under its lock) ──▶ members resolved (cron jobs first, then apps: the
 *   original's order of checks; a cron job goes in with its whole config) ──▶ rollouts row
 *   (kind 'group', app = the group's name, incarnation, revision = seq, expected hosts = the online
 *   hosts that follow the group now) ──▶ outbox `groups.<g>` ──▶ NOTIFY
 */
export type GroupAction = 'create' | 'update' | 'prune' | 'delete' | 'cron_job';

export interface GroupChangeOptions {
  actor: string;
  /** A host is expected to apply the change while it has missed fewer heartbeats than this. */
  offlineAfterMissedHeartbeats: number;
  /** The NATS server's max_payload: a larger message is refused (MessageTooLargeError) before anything is written. */
  maxMessageBytes?: number | undefined;
}

export interface RecordedGroupMessage {
  message: GroupMessage;
  rolloutId: string;
  expectedHosts: string[];
}

/**
 * The named cron jobs with their configs, in the group's order. `strict` (a create or an update, whose
 * lists the caller gave): CronJobNotFoundError / AppNotFoundError for the first one missing. Otherwise
 * (a prune, a job's update) one missing is left out: deletes are refused while a group names an app
 * or job, so that is only a hand-edited database, which must not stop a prune of every group.
 */
export async function resolveMembers(
  trx: Transaction<Database>,
  lists: { apps: readonly string[]; cron_jobs: readonly string[] },
  strict: boolean,
): Promise<GroupCronJob[]> {
  const jobs =
    lists.cron_jobs.length === 0
      ? []
      : await trx
          .selectFrom('cron_jobs')
          .select(['name', 'cron_job_id', 'config'])
          .where('name', 'in', [...lists.cron_jobs])
          .where('deleted_at', 'is', null)
          .execute();
  const byName = new Map(jobs.map((j) => [j.name, j]));
  const out: GroupCronJob[] = [];
  for (const name of lists.cron_jobs) {
    const j = byName.get(name);
    if (!j) {
      if (strict) throw new CronJobNotFoundError(name);
      continue;
    }
    out.push({ name, cron_job_id: j.cron_job_id, config: j.config as GroupCronJob['config'] });
  }
  if (strict && lists.apps.length > 0) {
    const apps = await trx
      .selectFrom('apps')
      .select('name')
      .where('name', 'in', [...lists.apps])
      .where('deleted_at', 'is', null)
      .execute();
    const live = new Set(apps.map((a) => a.name));
    const missing = lists.apps.find((a) => !live.has(a));
    if (missing !== undefined) throw new AppNotFoundError(missing);
  }
  return out;
}

/** Online hosts whose newest heartbeat says they follow the group (the rule app changes use for theirs). */
async function followers(trx: Transaction<Database>, group: string, missed: number): Promise<string[]> {
  const rows = await trx
    .selectFrom('hosts')
    .select('id')
    .where('device_group', '=', group)
    .where(onlineSql('hosts', { n: missed }))
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Writes the message of `state` (the group as the change left it, its seq already counted) and its
 * rollout. `jobs`: the cron jobs of resolveMembers (none for a delete, whose message is empty).
 */
export async function recordGroupMessage(
  trx: Transaction<Database>,
  state: GroupState,
  action: GroupAction,
  jobs: readonly GroupCronJob[],
  opts: GroupChangeOptions,
): Promise<RecordedGroupMessage> {
  const rolloutId = randomUUID();
  const deleted = action === 'delete';
  // Parsed before it is stored: what hosts receive is always valid (a cron config from before a field existed gets its default).
  const message = groupMessageSchema.parse({
    v: MESSAGE_VERSION,
    device_group: state.name,
    incarnation: state.incarnation,
    seq: state.seq,
    device_group_id: state.device_group_id,
    prune_id: state.prune_id,
    deleted,
    apps: deleted ? [] : state.apps,
    cron_jobs: deleted ? [] : [...jobs],
    rollout_id: rolloutId,
    created_at: new Date().toISOString(),
    actor: opts.actor,
  } satisfies GroupMessage);
  const payload = JSON.stringify(message);
  const msgId = groupMessageId(message);
  if (opts.maxMessageBytes !== undefined) {
    const size = publishedSize(Buffer.byteLength(payload), msgId);
    if (size > opts.maxMessageBytes) throw new MessageTooLargeError(`device group ${state.name}`, size, opts.maxMessageBytes);
  }
  const hosts = await followers(trx, state.name, opts.offlineAfterMissedHeartbeats);
  await trx
    .insertInto('rollouts')
    .values({
      id: rolloutId,
      app: state.name,
      incarnation: String(state.incarnation),
      revision: state.seq,
      action,
      expected_hosts: hosts,
      kind: 'group',
      device_group: state.name,
    })
    .execute();
  await trx
    .insertInto('outbox')
    .values({ subject: groupSubjects.group(state.name), msg_id: msgId, payload })
    .execute();
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(trx);
  return { message, rolloutId, expectedHosts: hosts };
}
