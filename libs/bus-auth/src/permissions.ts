import { groupSubjects, stableHash, streams, subjects } from '@nebula/contracts';

/**
 * Who may do what on the bus, one pure function per role. Everything not listed is refused by the
 * server (a permissions violation, which the server logs and counts):
 *
 *   api       publishes apps.> and groups.>, manages the APPS and GROUPS streams and every consumer on it (the hosts' too:
 *             the control plane creates them, never the host), and the consumers on them in a region's domain
 *   notifier  manages RESULTS, HOSTS and EVENTS and its consumers on them; publishes nothing else
 *   host      reads its own consumers on APPS (info, pull, ack), the newest revision of its own apps
 *             (direct get by subject), the streams' info; with a device group, its consumer on GROUPS
 *             and the group's newest message; publishes only its results, its heartbeat and its
 *             events (`events.<host>.>`); receives only on its own inbox prefix, so no host reads another's replies
 *
 *   region    the link of a region's leaf server to the hub (see region-config.ts): everything in the
 *             account but the subjects the region's own streams capture, both ways
 *
 * The API and the notifier manage their streams in a region's JetStream domain too (the mirrors,
 * the region's RESULTS, HOSTS and EVENTS, the consumers of its hosts): `$JS.<domain>.API...`, which
 * the region's leaf server takes as its own `$JS.API...`.
 *
 * A host cannot create, change, purge or delete a stream or a consumer. What it still can do is make
 * the server answer on a subject it chose (a reply subject): that is why app messages are signed.
 */
export interface BusPermissions {
  pub: { allow: string[]; deny?: string[] };
  sub: { allow: string[]; deny?: string[] };
}

/** A durable name per host and app; the hash keeps `a_b`+`c` and `a`+`b_c` apart. */
export function consumerName(hostId: string, app: string): string {
  return `w_${hostId}_${app}_${stableHash([hostId, app]).slice(0, 16)}`;
}

/** A host's durable consumer on GROUPS for the device group it follows. */
export function groupConsumerName(hostId: string, group: string): string {
  return `g_${hostId}_${group}_${stableHash([hostId, group, 'group']).slice(0, 16)}`;
}

/** A host's replies arrive under this prefix only (the client's `inboxPrefix`). */
export function hostInboxPrefix(hostId: string): string {
  return `_INBOX_${hostId}`;
}

/** The JetStream API subjects of one stream's administration, in this domain and in any other (a region's). */
function streamAdmin(stream: string): string[] {
  const local = streamAdminLocal(stream);
  return [...local, ...local.filter((s) => s.startsWith('$JS.API.')).map((s) => s.replace('$JS.API.', '$JS.*.API.'))];
}

function streamAdminLocal(stream: string): string[] {
  return [
    `$JS.API.STREAM.*.${stream}`, // CREATE, UPDATE, INFO, DELETE, PURGE
    `$JS.API.STREAM.MSG.*.${stream}`, // GET, DELETE
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.*.${stream}`, // LIST, NAMES, CREATE (2.9)
    `$JS.API.CONSUMER.*.${stream}.>`, // CREATE (2.10, with filter), INFO, DELETE, MSG.NEXT
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.ACK.${stream}.>`,
  ];
}

const ACCOUNT_INFO = '$JS.API.INFO';
const STREAM_NAMES = ['$JS.API.STREAM.NAMES', '$JS.API.STREAM.LIST'];
const DOMAIN_INFO = ['$JS.*.API.INFO', '$JS.*.API.STREAM.NAMES', '$JS.*.API.STREAM.LIST'];

export function apiPermissions(): BusPermissions {
  return {
    pub: {
      allow: [
        subjects.allApps,
        subjects.allGroups,
        ACCOUNT_INFO,
        ...STREAM_NAMES,
        ...DOMAIN_INFO,
        ...streamAdmin(streams.apps.name),
        ...streamAdmin(streams.groups.name),
      ],
    },
    sub: { allow: ['_INBOX.>'] },
  };
}

export function notifierPermissions(): BusPermissions {
  return {
    pub: {
      allow: [
        ACCOUNT_INFO,
        ...STREAM_NAMES,
        ...DOMAIN_INFO,
        ...streamAdmin(streams.results.name),
        ...streamAdmin(streams.hosts.name),
        ...streamAdmin(streams.events.name),
      ],
    },
    sub: { allow: ['_INBOX.>'] },
  };
}

/**
 * A host that follows a device group also reads its consumer on GROUPS and the group's newest
 * message, and publishes its events (`events.<host>.>`: group results, cron runs, prunes).
 */
export function hostPermissions(hostId: string, apps: readonly string[], deviceGroup?: string | null): BusPermissions {
  const apps_ = streams.apps.name;
  const perApp = [...new Set(apps)].sort().flatMap((app) => {
    const c = consumerName(hostId, app);
    return [
      `$JS.API.CONSUMER.INFO.${apps_}.${c}`,
      `$JS.API.CONSUMER.MSG.NEXT.${apps_}.${c}`,
      `$JS.ACK.${apps_}.${c}.>`,
      `$JS.API.DIRECT.GET.${apps_}.${subjects.app(app)}`,
      subjects.result(app, hostId),
    ];
  });
  const groups_ = streams.groups.name;
  const perGroup =
    deviceGroup === undefined || deviceGroup === null
      ? []
      : [
          `$JS.API.CONSUMER.INFO.${groups_}.${groupConsumerName(hostId, deviceGroup)}`,
          `$JS.API.CONSUMER.MSG.NEXT.${groups_}.${groupConsumerName(hostId, deviceGroup)}`,
          `$JS.ACK.${groups_}.${groupConsumerName(hostId, deviceGroup)}.>`,
          `$JS.API.DIRECT.GET.${groups_}.${groupSubjects.group(deviceGroup)}`,
          groupSubjects.hostEvents(hostId),
        ];
  return {
    pub: {
      allow: [ACCOUNT_INFO, ...Object.values(streams).map((s) => `$JS.API.STREAM.INFO.${s.name}`), ...perApp, ...perGroup, subjects.heartbeat(hostId)],
    },
    sub: { allow: [`${hostInboxPrefix(hostId)}.>`] },
  };
}

/**
 * The subjects a region's own streams capture (its hosts' results, heartbeats and events): they
 * reach the hub only through the hub's streams sourcing the region's, never over the link as they
 * are published (the hub's streams would store them twice), and the hub's own never go the other
 * way. App revisions and group messages are not published from a region at all: its APPS and
 * GROUPS are mirrors.
 */
export const REGION_LOCAL_SUBJECTS: readonly string[] = [subjects.allResults, subjects.allHeartbeats, groupSubjects.allEvents];

/** The rights of a region leaf server's link to the hub (what the link user may publish is what flows to the hub). */
export function regionLinkPermissions(): BusPermissions {
  return {
    pub: { allow: ['>'], deny: [...REGION_LOCAL_SUBJECTS, subjects.allApps, subjects.allGroups] },
    sub: { allow: ['>'], deny: [...REGION_LOCAL_SUBJECTS] },
  };
}
