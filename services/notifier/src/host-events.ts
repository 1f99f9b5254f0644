import type { JsMsg } from '@nats-io/jetstream';
import { type CronRunReport, cronRunReportSchema, type GroupResult, groupResultSchema, type PruneReport, pruneReportSchema } from '@nebula/contracts';
import { isUuid } from '@nebula/db';
import { decode, InvalidMessageError } from '@nebula/messaging';
import { isHostEventKind } from './authenticate.ts';

/**
 * What hosts report about their device groups, on `events.<host>.<kind>.<name>` (stream EVENTS):
 *
 *   events.<host>.group.<g>    GroupResult     the host converged to a group message (its rollout, host by host)
 *   events.<host>.cron.<job>   CronRunReport   one run of a cron job ended (or could not start)
 *   events.<host>.prune.<g>    PruneReport     what one prune of the group freed on the host
 *
 * The signature was checked before (the host the subject names, by its registered key); decoding
 * checks that the body speaks of that host and of the subject's group or job, so a host can only
 * ever report about itself.
 */
export type HostEvent = { kind: 'group'; value: GroupResult } | { kind: 'cron'; value: CronRunReport } | { kind: 'prune'; value: PruneReport };

/** The kind of a host event's subject (its third token), `?` for a subject of another shape: a metrics label. */
export function hostEventKindOf(subject: string): string {
  const k = subject.split('.')[2];
  return isHostEventKind(k) ? k : '?';
}

/** Parses and checks one host event; throws InvalidMessageError for one that can never be written. */
export function decodeHostEvent(msg: Pick<JsMsg, 'data' | 'subject'>): HostEvent {
  const parts = msg.subject.split('.');
  const [root, host, kind, name] = parts;
  if (parts.length !== 4 || root !== 'events' || !isHostEventKind(kind)) throw new InvalidMessageError(`${msg.subject} is not a host event subject`);
  const mismatch = (what: string) => new InvalidMessageError(`${kind} event on ${msg.subject} is for ${what}`);
  switch (kind) {
    case 'group': {
      const v = decode(groupResultSchema, msg.data, msg.subject);
      if (v.host !== host || v.device_group !== name) throw mismatch(`group ${v.device_group} on ${v.host}`);
      if (!isUuid(v.rollout_id))
        throw new InvalidMessageError(`group result on ${msg.subject}: rollout_id ${JSON.stringify(v.rollout_id.slice(0, 64))} is not a rollout id`);
      return { kind, value: v };
    }
    case 'cron': {
      const v = decode(cronRunReportSchema, msg.data, msg.subject);
      if (v.host !== host || v.job !== name) throw mismatch(`job ${v.job} on ${v.host}`);
      return { kind, value: v };
    }
    case 'prune': {
      const v = decode(pruneReportSchema, msg.data, msg.subject);
      if (v.host !== host || v.device_group !== name) throw mismatch(`group ${v.device_group} on ${v.host}`);
      return { kind, value: v };
    }
  }
}
