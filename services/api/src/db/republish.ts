import { type AppAction, type AppConfig, subjects, type WaveBase } from '@nebula/contracts';
import { buildAppMessage, OUTBOX_CHANNEL, republishedMsgId } from '@nebula/db';
import type pg from 'pg';

export { republishedMsgId };

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
 * The new row carries the app's newest message as it was: the newest outbox row of its subject (a
 * wave of a rollout going out keeps its wave, hosts and base), or, when retention pruned that row, one
 * rebuilt from the revision and its rollout (its current wave while it goes out in waves). It goes
 * under a message id of its own: JetStream keeps the ids it saw in its duplicate window even across a purge, and would
 * drop the original id as a duplicate.
 *
 * Runs on the relay's session, between two drains: nothing publishes while it decides.
 */
export function republishMissing(client: pg.Client, stored: Set<string>): Promise<string[]> {
  const prefix = subjects.app('');
  return republishInTransaction(client, async () => {
    const { rows } = await client.query<{
      name: string;
      incarnation: string;
      revision: number;
      action: string;
      config: unknown;
      actor: string | null;
      rollout_id: string;
      created_at: Date;
      last_payload: unknown;
      last_msg_id: string | null;
      state: string | null;
      step: number | null;
      base: unknown;
      wave_hosts: string[] | null;
    }>(
      `select a.name, a.incarnation::text as incarnation, a.revision, r.action, r.config, r.actor, r.rollout_id::text as rollout_id, r.created_at,
              last.payload as last_payload, last.msg_id as last_msg_id, ro.state, ro.step, ro.base,
              (select array_agg(h order by w.wave) from rollout_waves w cross join unnest(w.hosts) h
                where w.rollout_id = ro.id and w.wave <= ro.wave) as wave_hosts
         from apps a
         join app_revisions r on r.incarnation = a.incarnation and r.revision = a.revision
         left join rollouts ro on ro.id = r.rollout_id
         left join lateral (
           select o.payload, o.msg_id from outbox o
            where o.subject = $1::text || a.name and o.dead_at is null
            order by o.id desc limit 1) last on (last.payload->>'rollout_id') = r.rollout_id::text
        where a.deleted_at is null
          and ro.publish_error is null
          and not (($1::text || a.name) = any($2::text[]))
          and not exists (select 1 from outbox o where o.subject = $1::text || a.name and o.published_at is null and o.dead_at is null)
        order by a.name
          for update of a skip locked`,
      [prefix, [...stored]],
    );
    const out: RepublishRow[] = [];
    for (const row of rows) {
      const subject = `${prefix}${row.name}`;
      let payload: string;
      let msgId: string;
      if (row.last_payload !== null && row.last_msg_id !== null) {
        // The newest message as it went out (a republished one keeps its original id as the stem).
        payload = JSON.stringify(row.last_payload);
        msgId = originalMsgId(row.last_msg_id);
      } else {
        // Stored configs were validated on the way in; the envelope is checked again before it goes out.
        const inWaves = (row.state === 'rolling' || row.state === 'paused') && row.step !== null && row.step > 0;
        const m = buildAppMessage(
          {
            app: row.name,
            incarnation: Number(row.incarnation),
            revision: row.revision,
            action: row.action as AppAction,
            config: row.config as AppConfig,
            rolloutId: row.rollout_id,
            createdAt: row.created_at,
            actor: row.actor,
          },
          inWaves ? { step: row.step ?? 1, hosts: row.wave_hosts ?? [], base: (row.base ?? null) as WaveBase | null } : undefined,
        );
        payload = m.payload;
        msgId = m.msgId;
      }
      out.push({ subject, msgId, payload });
    }
    return out;
  });
}

export interface RepublishRow {
  subject: string;
  /** The message's own id: it goes out under republishedMsgId of it. */
  msgId: string;
  payload: string;
}

/** The id a message first went out under (a republished one keeps it as its stem). */
export function originalMsgId(msgId: string): string {
  return msgId.split(':republished:')[0] ?? msgId;
}

/**
 * Runs `pick` (which reads, and locks with skip locked, what is missing) in one transaction on the
 * relay's session and writes the rows it returns into the outbox under message ids of their own
 * (JetStream keeps the ids it saw in its duplicate window even across a purge), with a NOTIFY when
 * there are any. Returns their subjects.
 */
export async function republishInTransaction(client: pg.Client, pick: () => Promise<RepublishRow[]>): Promise<string[]> {
  await client.query('begin');
  try {
    const rows = await pick();
    for (const r of rows) {
      await client.query('insert into outbox (subject, msg_id, payload) values ($1, $2, $3)', [r.subject, republishedMsgId(r.msgId), r.payload]);
    }
    if (rows.length > 0) await client.query('select pg_notify($1, $2)', [OUTBOX_CHANNEL, '']);
    await client.query('commit');
    return rows.map((r) => r.subject);
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}
