import { natsHostBus } from '../hosts/host-bus.ts';
import { createHostEnrolment, type HostEnrolment } from '../hosts/host-enrolment.ts';
import { RevocationPusher } from '../hosts/revocation-pusher.ts';
import { AttemptThrottle } from './attempt-throttle.ts';
import { createEnrolmentRoute } from './enrolment-route.ts';
import type { ApiServerOptions } from './server.ts';

/**
 * Hosts on the bus, as the server needs them: the enrolment (join tokens, joins, renewals,
 * revocations: procedures reach it through the context), the route hosts call without a user
 * credential (`/api/v2/hosts/join|renew`, failures throttled per address), and the pusher of the
 * account's revocation list.
 */
export interface HostsStage {
  hostEnrolment: HostEnrolment;
  enrolmentRoute: ReturnType<typeof createEnrolmentRoute>;
  revocations: RevocationPusher;
}

export function createHostsStage(opts: ApiServerOptions, maxBody: number): HostsStage {
  const { db, log } = opts;
  const hostOpts = opts.hosts ?? {};
  const natsServers = hostOpts.servers ?? [opts.nc.getServer()].map((s) => (s.includes('://') ? s : `nats://${s}`));
  const regions = hostOpts.regions ?? [];
  const bus = natsHostBus({ nc: opts.nc, keys: opts.keys, servers: natsServers, regions, tlsCa: hostOpts.tlsCa, timeoutMs: hostOpts.timeoutMs ?? 5000 });
  const revocations = new RevocationPusher({ db, bus, log, retryMs: hostOpts.revocationRetryMs ?? 10_000 });
  const hostEnrolment = createHostEnrolment({
    db,
    bus,
    keys: opts.keys,
    revocations,
    log,
    credentialTtlMs: hostOpts.credentialTtlMs ?? 24 * 3_600_000,
    publicUrl: hostOpts.publicUrl,
    publicNatsUrl: (hostOpts.publicNatsServers ?? natsServers).join(','),
    workerImage: hostOpts.workerImage,
    regions,
  });
  const enrolmentRoute = createEnrolmentRoute({
    enrolment: hostEnrolment,
    throttle: new AttemptThrottle({ maxFailures: hostOpts.maxFailuresPerMinute ?? 10, windowMs: 60_000 }),
    log,
    maxBodyBytes: Math.min(maxBody, 64 * 1024),
  });
  return { hostEnrolment, enrolmentRoute, revocations };
}
