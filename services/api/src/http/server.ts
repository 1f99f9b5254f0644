import type { IncomingMessage, Server } from 'node:http';
import type { NatsConnection } from '@nats-io/transport-node';
import { type ControlPlaneKeys, keyFromSeed } from '@nebula/bus-auth';
import { type Database, type Kysely, migrateToLatest } from '@nebula/db';
import { clusterSizeOf, keepRegionStreams, type Region, type ReplicaSetting } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import { Authenticator, type AuthSettings, type Identity } from '../auth.ts';
import { OutboxRelay } from '../db/outbox-relay.ts';
import { RetentionJob, type RetentionOptions } from '../db/retention.ts';
import type { RevocationPusher } from '../hosts/revocation-pusher.ts';
import { jetStreamPublisher } from '../publisher.ts';
import { type Context, configureSse } from '../trpc.ts';
import { AttemptThrottle } from './attempt-throttle.ts';
import { parseOrigin } from './cross-site.ts';
import { createCrossSiteStage } from './cross-site-stage.ts';
import { createHostsStage } from './hosts-stage.ts';
import { createListener, listen, type Scheme, type ServerTls, schemeOf } from './listener.ts';
import { createOps } from './ops.ts';
import { createPipeline } from './pipeline.ts';
import { createRestRoute } from './rest-route.ts';
import { createTrpcRoute, type OnProcedureError } from './trpc-route.ts';
import { createUiStage } from './ui-stage.ts';
import { WatchSlots } from './watch-slots.ts';

/**
 * The API's HTTP server, a pipeline of stages:
 *
 *   request ─▶ /health? ─▶ cross-site ─┬▶ auth ─▶ /metrics? ─▶ body guard ─▶ route ────────────▶ answer (JSON)
 *              open (ops)  403/415 JSON │  401 JSON            413 JSON       /openapi.json
 *                          (changes:    │  + WWW-Authenticate                 /trpc/<procedure>  (trpc-route.ts)
 *                          JSON only,   │                                     /api/v2/...        (rest-route.ts)
 *                          no other     │                                     else 404
 *                          site; see    └▶ /api/v2/hosts/join|renew ─▶ enrolment-route.ts (the token or the
 *                          cross-site.ts)  host's signature authenticates; failures throttled per address)
 *   a stage that throws ─▶ 500 JSON, logged once (answerUnexpected)
 *
 * pipeline.ts puts the stages in this order; hosts-stage.ts builds the hosts' part (enrolment,
 * revocations); createApiServer only assembles them and owns start and close.
 *
 * Each stage answers the request itself when it stops it; bodies are read once, by the guard.
 */
export interface ApiServerOptions {
  db: Kysely<Database>;
  /** For the outbox relay's own session (advisory lock + LISTEN). */
  databaseUrl: string;
  nc: NatsConnection;
  log: Logger;
  auth: AuthSettings;
  /**
   * Failed logins (wrong credentials; none at all does not count) per source address and minute
   * (default 20), and per user name and minute (default 10), before 429; how long a proven user
   * credential is remembered (default 5 s).
   */
  logins?: { maxFailuresPerSource?: number; maxFailuresPerUser?: number; cacheMs?: number };
  /** Serve HTTPS with this certificate and key (API_TLS_CERT, API_TLS_KEY); plain HTTP without. */
  tls?: ServerTls | undefined;
  /**
   * Origins (`https://console.example.com`) whose pages may send changes besides the API's own
   * (API_ALLOWED_ORIGINS, normalised by parseOrigin); the origin of `hosts.publicUrl` is always one.
   */
  allowedOrigins?: readonly string[];
  port?: number;
  host?: string;
  maxBodyBytes?: number;
  offlineAfterMissedHeartbeats?: number;
  /** How often a `rollouts.watch` subscription re-reads progress (default 500 ms). */
  watchPollMs?: number;
  /**
   * Bounds of `rollouts.watch` streams: open ones per identity (default 10), how long one lasts
   * before the server ends it and the client reconnects (default 15 min), the keep-alive ping
   * (default 15 s). Duration and ping are process-wide (see configureSse).
   */
  watch?: { maxPerIdentity?: number; maxDurationMs?: number; pingMs?: number };
  /** The built dashboard served at /ui (default services/api/ui/dist). */
  uiDir?: string;
  /** Calls per tRPC batch request (default 20). */
  maxBatchSize?: number;
  /** Pruning of expired rows (db/retention.ts; default 30 days, hourly); false: none. */
  retention?: RetentionOptions | false;
  relay?: { lockPollMs?: number; pollMs?: number; maxBackoffMs?: number; streamCheckMs?: number };
  /** Copies of the APPS and GROUPS streams in a NATS cluster (NATS_STREAM_REPLICAS; default `auto`: the cluster's servers, up to 3). */
  streamReplicas?: ReplicaSetting;
  /** The control plane's bus keys (BUS_KEYS_FILE): app message signatures, host credentials, revocations. */
  keys: ControlPlaneKeys;
  /**
   * Hosts on the bus: the servers (and CA PEM) the account's revocation list is pushed to (default:
   * the server `nc` is connected to), each call's deadline, how long a host credential lasts
   * (default 24 h), the URL join commands name, failed joins per address and minute (default 10),
   * how often a failed revocation push is tried again (default 10 s).
   */
  hosts?: {
    servers?: string[];
    tlsCa?: string | undefined;
    timeoutMs?: number;
    credentialTtlMs?: number;
    publicUrl?: string | undefined;
    /** The NATS servers as hosts reach them, for join commands (default: `servers`). */
    publicNatsServers?: string[] | undefined;
    /**
     * The regions (NATS_REGIONS) join tokens may name; revocations are pushed to their servers too,
     * and each one's JetStream domain gets mirrors of APPS and GROUPS, kept from here in the
     * background (a region out of reach never holds up the start). Default: none.
     */
    regions?: Region[];
    /** The worker image join commands name (default `nebula/worker:latest`). */
    workerImage?: string | undefined;
    maxFailuresPerMinute?: number;
    revocationRetryMs?: number;
  };
}

export interface ApiServer {
  server: Server;
  port: number;
  url: string;
  relay: OutboxRelay;
  revocations: RevocationPusher;
  close(): Promise<void>;
}

async function startRelay(opts: ApiServerOptions): Promise<OutboxRelay> {
  const publisher = jetStreamPublisher(opts.nc, keyFromSeed(opts.keys.message_signing_seed), undefined, {
    replicas: opts.streamReplicas ?? 'auto',
    // Read at each ensure: the servers the connection's server has routes to now.
    clusterSize: () => clusterSizeOf(opts.nc.info),
  });
  try {
    await publisher.ensure();
  } catch (err) {
    // Not fatal: the relay ensures the stream again before it publishes.
    opts.log.warn({ err }, 'could not ensure the APPS and GROUPS streams at start; will retry before publishing');
  }
  return new OutboxRelay({ databaseUrl: opts.databaseUrl, publisher, log: opts.log, ...opts.relay });
}

function keepRegionMirrors(opts: ApiServerOptions) {
  const regions = (opts.hosts?.regions ?? []).map((r) => r.name);
  if (regions.length === 0) return null;
  return keepRegionStreams({
    nc: opts.nc,
    regions,
    keys: ['apps', 'groups'],
    onReady: (region) => opts.log.info({ region }, 'region has its APPS and GROUPS mirrors'),
    onError: (region, err) => opts.log.warn({ region, err }, 'could not make the APPS and GROUPS mirrors in a region (trying again)'),
  });
}

/** `<scheme>://<Host>` of the request, for join commands; a Host header that is not a plain host[:port] is not echoed. */
function originOf(req: IncomingMessage, scheme: Scheme): string | undefined {
  const host = req.headers.host;
  return host && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host) ? `${scheme}://${host}` : undefined;
}

/** The allow list of the cross-site stage: API_ALLOWED_ORIGINS and the origin of API_PUBLIC_URL (the API's own, seen from outside). */
function allowedOriginsOf(opts: ApiServerOptions): Set<string> {
  const list = new Set<string>();
  for (const o of opts.allowedOrigins ?? []) {
    const origin = parseOrigin(o);
    if (origin === null) throw new Error(`allowedOrigins: not an origin (scheme://host[:port]): ${o}`);
    list.add(origin);
  }
  const publicUrl = opts.hosts?.publicUrl;
  if (publicUrl !== undefined && URL.canParse(publicUrl)) list.add(new URL(publicUrl).origin);
  return list;
}

function authenticatorFor(opts: ApiServerOptions): Authenticator {
  const logins = opts.logins ?? {};
  return new Authenticator({
    settings: opts.auth,
    db: opts.db,
    throttle: {
      perSource: new AttemptThrottle({ maxFailures: logins.maxFailuresPerSource ?? 20, windowMs: 60_000 }),
      perUser: new AttemptThrottle({ maxFailures: logins.maxFailuresPerUser ?? 10, windowMs: 60_000 }),
    },
    cacheMs: logins.cacheMs,
  });
}

/** Closes the listener: open streams are ended by `stopping`; a socket left by one is not waited for. */
function closeListener(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    // A stream that just ended leaves its keep-alive socket behind: do not wait for its timeout.
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  });
}

export async function createApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const { db, log } = opts;
  const auth = authenticatorFor(opts);
  const scheme = schemeOf(opts.tls);
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const settings = {
    offlineAfterMissedHeartbeats: opts.offlineAfterMissedHeartbeats ?? 3,
    watchPollMs: opts.watchPollMs ?? 500,
    maxMessageBytes: () => opts.nc.info?.max_payload,
  };
  await migrateToLatest(db);
  // Ends open subscriptions (server-sent event streams) at close, which would otherwise hold it open.
  const stopping = new AbortController();
  const { hostEnrolment, enrolmentRoute, revocations } = createHostsStage(opts, maxBody);

  const identities = new WeakMap<IncomingMessage, Identity>();
  const contextFor = (req: IncomingMessage): Context => ({
    db,
    log,
    identity: identities.get(req) ?? null,
    settings,
    auth,
    stopping: stopping.signal,
    hostEnrolment,
    origin: originOf(req, scheme),
  });
  const logUnexpected: OnProcedureError = ({ error, path }) => {
    if (error.code === 'INTERNAL_SERVER_ERROR') log.error({ err: error.cause ?? error, path }, 'unexpected error in a procedure');
  };
  configureSse({ pingMs: opts.watch?.pingMs, maxDurationMs: opts.watch?.maxDurationMs });
  const watchSlots = new WatchSlots(opts.watch?.maxPerIdentity ?? 10);
  const relay = await startRelay(opts);
  const retention = opts.retention === false ? null : new RetentionJob(db, log, opts.retention ?? { retentionDays: 30 });

  const server = createListener(
    opts.tls,
    createPipeline({
      log,
      ops: createOps(db, opts.nc, relay, retention),
      crossSite: createCrossSiteStage({ scheme, allowedOrigins: allowedOriginsOf(opts), log }),
      enrolmentRoute,
      auth,
      identities,
      maxBodyBytes: maxBody,
      trpcRoute: createTrpcRoute(contextFor, logUnexpected, { maxBatchSize: opts.maxBatchSize ?? 20, watchSlots }),
      restRoute: createRestRoute(contextFor, logUnexpected),
      ui: createUiStage(opts.uiDir),
    }),
  );
  const port = await listen(server, opts.port ?? 0, opts.host ?? '127.0.0.1');
  relay.start();
  retention?.start();
  const mirrors = keepRegionMirrors(opts);
  // A server restarted from an older account JWT gets the revocation list back (and a push that
  // failed before this replica started is done now).
  revocations.start();
  return {
    server,
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    relay,
    revocations,
    async close() {
      stopping.abort();
      await revocations.stop();
      await closeListener(server);
      await relay.stop();
      await retention?.stop();
      mirrors?.stop();
    },
  };
}
