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
 * A host cannot create, change, purge or delete a stream or a consumer. What it still can do is make
 * the server answer on a subject it chose (a reply subject): that is why app messages are signed.
 */
export interface BusPermissions {
  pub: { allow: string[] };
  sub: { allow: string[] };
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

/** The JetStream API subjects of one stream's administration: the stream and its consumers. */
function streamAdmin(stream: string): string[] {
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

/**
 * The consumers of `stream` in any other JetStream domain (`$JS.<domain>.API`): a region's hosts'
 * consumers on its mirror of the stream, which the API makes through the region's leaf connection.
 * The consumers only: the regions' streams are the servers' configuration, not the API's.
 */
function domainConsumerAdmin(stream: string): string[] {
  return [`$JS.*.API.CONSUMER.*.${stream}`, `$JS.*.API.CONSUMER.*.${stream}.>`, `$JS.*.API.CONSUMER.DURABLE.CREATE.${stream}.*`];
}

export function apiPermissions(): BusPermissions {
  return {
    pub: {
      allow: [
        subjects.allApps,
        subjects.allGroups,
        ACCOUNT_INFO,
        ...STREAM_NAMES,
        ...streamAdmin(streams.apps.name),
        ...streamAdmin(streams.groups.name),
        '$JS.*.API.INFO',
        ...domainConsumerAdmin(streams.apps.name),
        ...domainConsumerAdmin(streams.groups.name),
      ],
    },
    sub: { allow: ['_INBOX.>'] },
  };
}

export function notifierPermissions(): BusPermissions {
  return {
    pub: {
      allow: [ACCOUNT_INFO, ...STREAM_NAMES, ...streamAdmin(streams.results.name), ...streamAdmin(streams.hosts.name), ...streamAdmin(streams.events.name)],
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
