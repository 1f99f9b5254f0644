import type { JetStreamManager } from '@nats-io/jetstream';
import type { GroupMessage } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import { appSetChange } from './app-set.ts';
import { type GroupMessageGate, readNewestGroupMessage } from './message-gate.ts';

export interface GroupAtStart {
  /** The group's newest message (null: none yet, or it could not be read). */
  message: GroupMessage | null;
  /** The apps whose containers stay: APP_NAME's and the group's. */
  keep: string[];
  /** The apps to serve from now on; null: the rights to the group's apps were not got (APP_NAME's stay served). */
  serve: string[] | null;
}

/**
 * With a device group, before anything is called unserved: the group's newest message (by direct
 * get), its apps served too. Getting the rights to them needs a renewal and a reconnect; when that
 * fails, the group follower tries again with the same message.
 */
export async function readGroupAtStart(
  deps: { jsm: JetStreamManager; groupGate: GroupMessageGate; fixedApps: readonly string[]; regrant(apps: readonly string[]): Promise<void>; log: Logger },
  group: string,
): Promise<GroupAtStart> {
  const { fixedApps, log } = deps;
  const message = await readNewestGroupMessage(deps.jsm, group, deps.groupGate).catch((err: unknown) => {
    log.error({ err, device_group: group }, 'the newest message of the device group cannot be read: waiting for the next one');
    return null;
  });
  const wanted = appSetChange({ fixed: fixedApps, served: fixedApps, group: message === null || message.deleted ? [] : message.apps });
  let serve: string[] | null = null;
  if (wanted.added.length > 0) {
    try {
      await deps.regrant(wanted.next);
      serve = wanted.next;
    } catch (err) {
      log.warn({ err, apps: wanted.added }, 'could not get the rights to the device group apps at start: tried again with the group message');
    }
  }
  return { message, keep: wanted.next, serve };
}
