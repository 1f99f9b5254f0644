import { randomUUID } from 'node:crypto';
import { type AppAction, type AppConfig, type AppMessage, appMessageId, appMessageSchema, subjects, type WaveBase, wireConfig } from '@nebula/contracts';
import { sql, type Transaction } from 'kysely';
import type { Database } from './database.ts';

/**
 * App messages as the outbox stores them, for the change path (the first wave, or the whole revision)
 * and the rollout controller (later waves, retries, the final message without wave). Every message of
 * a revision carries the same envelope (incarnation, revision, rollout id, created_at); waves add
 * `wave` and are written as version 2.
 */

/** The channel the API's outbox relay LISTENs on: a NOTIFY wakes it at commit. */
export const OUTBOX_CHANNEL = 'nebula_outbox';

/** The envelope of one revision's messages. */
export interface RevisionEnvelope {
  app: string;
  incarnation: number;
  revision: number;
  action: AppAction;
  config: AppConfig;
  rolloutId: string;
  createdAt: Date;
  actor: string | null;
}

export interface WaveOfMessage {
  step: number;
  /** Every host of the waves so far (cumulative). */
  hosts: string[];
  base: WaveBase | null;
}

export interface OutboxMessage {
  message: AppMessage;
  subject: string;
  msgId: string;
  /** The JSON as it is published: configs without rollout_strategy. */
  payload: string;
}

/** The message id of a revision published again (never seen by the stream, even within its window). */
export function republishedMsgId(msgId: string): string {
  return `${msgId}:republished:${randomUUID()}`;
}

/** The envelope is checked before it is stored: what workers receive is always valid. */
export function buildAppMessage(e: RevisionEnvelope, wave?: WaveOfMessage): OutboxMessage {
  const message: AppMessage = appMessageSchema.parse({
    v: wave === undefined ? 1 : 2,
    app: e.app,
    incarnation: e.incarnation,
    revision: e.revision,
    action: e.action,
    config: e.config,
    rollout_id: e.rolloutId,
    created_at: e.createdAt.toISOString(),
    ...(e.actor === null ? {} : { actor: e.actor }),
    ...(wave === undefined ? {} : { wave }),
  });
  const wire = {
    ...message,
    config: wireConfig(message.config),
    ...(message.wave === undefined
      ? {}
      : { wave: { ...message.wave, base: message.wave.base === null ? null : { ...message.wave.base, config: wireConfig(message.wave.base.config) } } }),
  };
  return { message, subject: subjects.app(e.app), msgId: appMessageId(message), payload: JSON.stringify(wire) };
}

/** The outbox row of a message, and the relay's wake-up at commit. */
export async function insertOutboxMessage(trx: Transaction<Database>, m: OutboxMessage): Promise<void> {
  await trx.insertInto('outbox').values({ subject: m.subject, msg_id: m.msgId, payload: m.payload }).execute();
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(trx);
}

/** The envelope of rollout `id`'s revision, from its revision row. */
export async function envelopeOf(trx: Transaction<Database>, rolloutId: string): Promise<RevisionEnvelope> {
  const r = await trx
    .selectFrom('rollouts as r')
    .innerJoin('app_revisions as v', (j) => j.onRef('v.incarnation', '=', 'r.incarnation').onRef('v.revision', '=', 'r.revision'))
    .select(['r.app', 'r.incarnation', 'r.revision', 'v.action', 'v.config', 'v.actor', 'v.created_at'])
    .where('r.id', '=', rolloutId)
    .executeTakeFirstOrThrow();
  return {
    app: r.app,
    incarnation: Number(r.incarnation),
    revision: r.revision,
    action: r.action as AppAction,
    config: r.config as AppConfig,
    rolloutId,
    createdAt: r.created_at,
    actor: r.actor,
  };
}
