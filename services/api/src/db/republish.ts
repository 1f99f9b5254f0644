import { randomUUID } from 'node:crypto';
import { type AppMessage, appMessageId, appMessageSchema, subjects, wireConfig } from '@nebula/contracts';
import type pg from 'pg';
import { OUTBOX_CHANNEL } from './apps.ts';

/**
 * Puts the latest revision of every live app back in the stream when the stream lost it (APPS
 * deleted, recreated empty, purged): a host rebuilt afterwards adopts what its apps' subjects hold,
 * so a subject without its latest revision would leave that host empty.
 *
 * It goes through the outbox, so the relay's rules hold (per-app order, backoff, dead letters). An
 * app is left out when
 * - its subject still has a message in the stream (nothing was lost);
 * - it has an unpublished row (that one goes out anyway, and is at least as new);
 * - its latest revision could never be published (dead-lettered: it would fail again);
 * - it is being changed right now (row locked): the change publishes a newer revision.
 *
 * The new row carries the original message (same rollout, revision and created_at), under a message
 * id of its own: JetStream keeps the ids it saw in its duplicate window even across a purge, and would
 * drop the original id as a duplicate.
 *
 * Runs on the relay's session, between two drains: nothing publishes while it decides.
 */
/** The message id of a revision published again (never seen by the stream, even within its window). */
export function republishedMsgId(msgId: string): string {
  return `${msgId}:republished:${randomUUID()}`;
}

export async function republishMissing(client: pg.Client, stored: Set<string>): Promise<string[]> {
  const prefix = subjects.app('');
  await client.query('begin');
  try {
    const { rows } = await client.query<{
      name: string;
      incarnation: string;
      revision: number;
      action: string;
      config: unknown;
      actor: string | null;
      rollout_id: string;
      created_at: Date;
    }>(
      `select a.name, a.incarnation::text as incarnation, a.revision, r.action, r.config, r.actor, r.rollout_id::text as rollout_id, r.created_at
         from apps a
         join app_revisions r on r.incarnation = a.incarnation and r.revision = a.revision
         left join rollouts ro on ro.id = r.rollout_id
        where a.deleted_at is null
          and ro.publish_error is null
          and not (($1::text || a.name) = any($2::text[]))
          and not exists (select 1 from outbox o where o.subject = $1::text || a.name and o.published_at is null and o.dead_at is null)
        order by a.name
          for update of a skip locked`,
      [prefix, [...stored]],
    );
    const added: string[] = [];
    for (const row of rows) {
      // Stored configs were validated on the way in; the envelope is checked again before it goes out.
      const message: AppMessage = appMessageSchema.parse({
        v: 1,
        app: row.name,
        incarnation: Number(row.incarnation),
        revision: row.revision,
        action: row.action,
        config: row.config,
        rollout_id: row.rollout_id,
        created_at: row.created_at.toISOString(),
        ...(row.actor === null ? {} : { actor: row.actor }),
      });
      const subject = subjects.app(row.name);
      await client.query('insert into outbox (subject, msg_id, payload) values ($1, $2, $3)', [
        subject,
        republishedMsgId(appMessageId(message)),
        JSON.stringify({ ...message, config: wireConfig(message.config) }),
      ]);
      added.push(subject);
    }
    if (added.length > 0) await client.query(`select pg_notify('${OUTBOX_CHANNEL}', '')`);
    await client.query('commit');
    return added;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}
