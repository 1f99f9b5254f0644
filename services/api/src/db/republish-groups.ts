import { type GroupMessage, groupMessageSchema, groupSubjects, MESSAGE_VERSION } from '@nebula/contracts';
import type pg from 'pg';
import { originalMsgId, type RepublishRow, republishInTransaction } from './republish.ts';

/**
 * The device groups' counterpart of republishMissing (republish.ts): puts the newest message of every
 * live group back in the GROUPS stream when the stream lost it (deleted, recreated empty, purged). A
 * host that starts, joins or reconnects reads its group's newest message before it decides anything;
 * without it the host waits for a group that exists ("waiting for device group g").
 *
 * Through the outbox, under a message id of its own (the duplicate window survives a purge), on the
 * relay's session between two drains. A group is left out when its subject still holds a message,
 * when it has an unpublished row (that one goes out anyway), when its newest change could never be
 * published (dead-lettered), or when it is being changed right now (row locked).
 *
 * The new row carries the group's newest message as it went out: the newest outbox row of its subject
 * for the group's current seq, or, when retention pruned that row, one rebuilt from the group's row,
 * the cron jobs it names and its newest rollout (same seq and rollout id: hosts that applied it see
 * nothing new).
 */
/** A live group, its newest rollout (for its seq) and the newest outbox row of its subject (for that seq). */
interface GroupRow {
  name: string;
  incarnation: string;
  seq: number;
  device_group_id: number;
  prune_id: number;
  apps: string[];
  cron_jobs: string[];
  rollout_id: string | null;
  rollout_created_at: Date | null;
  last_payload: unknown;
  last_msg_id: string | null;
}

export function republishMissingGroups(client: pg.Client, stored: Set<string>): Promise<string[]> {
  const prefix = groupSubjects.group('');
  return republishInTransaction(client, async () => {
    const { rows } = await client.query<GroupRow>(
      `select g.name, g.incarnation::text as incarnation, g.seq, g.device_group_id, g.prune_id, g.apps, g.cron_jobs,
              ro.id::text as rollout_id, ro.created_at as rollout_created_at, last.payload as last_payload, last.msg_id as last_msg_id
         from device_groups g
         left join lateral (
           select r.id, r.created_at, r.publish_error from rollouts r
            where r.kind = 'group' and r.device_group = g.name and r.incarnation = g.incarnation and r.revision = g.seq
            order by r.created_at desc limit 1) ro on true
         left join lateral (
           select o.payload, o.msg_id from outbox o
            where o.subject = $1::text || g.name and o.dead_at is null and (o.payload->>'seq')::int = g.seq
              and (o.payload->>'incarnation') = g.incarnation::text
            order by o.id desc limit 1) last on true
        where g.deleted_at is null
          and ro.publish_error is null
          and not (($1::text || g.name) = any($2::text[]))
          and not exists (select 1 from outbox o where o.subject = $1::text || g.name and o.published_at is null and o.dead_at is null)
        order by g.name
          for update of g skip locked`,
      [prefix, [...stored]],
    );
    const out: RepublishRow[] = [];
    for (const row of rows) {
      const subject = `${prefix}${row.name}`;
      if (row.last_payload !== null && row.last_msg_id !== null) {
        out.push({ subject, msgId: originalMsgId(row.last_msg_id), payload: JSON.stringify(row.last_payload) });
      } else if (row.rollout_id !== null && row.rollout_created_at !== null) {
        const message = await rebuilt(client, { ...row, rollout_id: row.rollout_id, rollout_created_at: row.rollout_created_at });
        out.push({ subject, msgId: row.rollout_id, payload: JSON.stringify(message) });
      }
      // Else no rollout for its seq: a hand-edited database; nothing to say that hosts could trust.
    }
    return out;
  });
}

/** The group's message from its row: cron jobs in full, in the group's order (a job gone is left out, as a prune does). */
async function rebuilt(client: pg.Client, g: GroupRow & { rollout_id: string; rollout_created_at: Date }): Promise<GroupMessage> {
  const { rows } = await client.query<{ name: string; cron_job_id: number; config: unknown }>(
    'select name, cron_job_id, config from cron_jobs where name = any($1::text[]) and deleted_at is null',
    [g.cron_jobs],
  );
  const byName = new Map(rows.map((r) => [r.name, r]));
  const jobs = g.cron_jobs.flatMap((n) => {
    const j = byName.get(n);
    return j ? [{ name: j.name, cron_job_id: j.cron_job_id, config: j.config }] : [];
  });
  // Parsed as recordGroupMessage does: what hosts receive is always valid.
  return groupMessageSchema.parse({
    v: MESSAGE_VERSION,
    device_group: g.name,
    incarnation: Number(g.incarnation),
    seq: g.seq,
    device_group_id: g.device_group_id,
    prune_id: g.prune_id,
    deleted: false,
    apps: g.apps,
    cron_jobs: jobs,
    rollout_id: g.rollout_id,
    created_at: g.rollout_created_at.toISOString(),
  });
}
