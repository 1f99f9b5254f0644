import { type JetStreamManager, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type Heartbeat, heartbeatSchema, type Result, resultSchema, streams, subjects } from '@nebula/contracts';
import { countHosts, type Database, isUuid, type Kysely, NOTIFIER_CLOCK_TICK_MS, touchNotifierClock } from '@nebula/db';
import { clusterSizeOf, decode, ensureStream, InvalidMessageError, keepRegionStreams, type StreamOptions } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import { Registry } from 'prom-client';
import { dbHostKeySource } from './db/host-keys.ts';
import { rolloutStateCounts } from './db/rollouts.ts';
import { writeHeartbeats } from './db/write-heartbeats.ts';
import { writeHostEvents } from './db/write-host-events.ts';
import { writeResults } from './db/write-results.ts';
import { decodeHostEvent, type HostEvent, hostEventKindOf } from './host-events.ts';
import { HostKeyCache, type HostKeySource } from './host-keys.ts';
import { authenticator } from './message-auth.ts';
import { type ConsumerStats, createNotifierMetrics, type StreamLabel } from './metrics.ts';
import { type CompiledOptions, compileOptions, type NotifierOptions } from './options.ts';
import { rateLimited } from './rate-limited.ts';
import { RolloutController } from './rollouts/controller.ts';
import { createRolloutMetrics } from './rollouts/metrics.ts';
import { StreamConsumer } from './stream-consumer.ts';

/**
 * The notifier: workers' results, heartbeats and host events (group results, cron runs, prunes:
 * host-events.ts) from JetStream into PostgreSQL.
 *
 *   new ──start()──▶ starting (streams RESULTS, HOSTS and EVENTS ensured, durables bound) ──▶ running
 *                        │ failure: stopped (start() rejects)
 *   running ──stop()──▶ stopping (stop pulling, write and ack what was delivered) ──▶ stopped
 *
 * Every message is checked first: it must carry the signature of the host its subject names, by
 * the key registered for that host (host_credentials, kept in memory, see host-keys.ts); anything
 * else is dropped and counted (see authenticate.ts).
 *
 * Beside them runs the rollout controller (rollouts/controller.ts), which drives rollouts in waves:
 * every replica runs one, and the one holding its advisory lock is active.
 *
 * Replicas share the three durables, so each message is written by one of them; the writes are
 * idempotent upserts, so a redelivery (crash before ack, ack lost) changes nothing. The notifier
 * does not own `db` or `nc`: the caller closes them after stop().
 */
export type NotifierState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface NotifierDeps {
  db: Kysely<Database>;
  nc: NatsConnection;
  log: Logger;
  options?: NotifierOptions;
  /** The hosts' registered keys (default: table host_credentials of `db`). */
  hostKeys?: HostKeySource;
  /** Where to register the metrics (default: a registry of its own, see `registry`). */
  registry?: Registry;
}

export interface Notifier {
  readonly state: NotifierState;
  readonly options: CompiledOptions;
  readonly registry: Registry;
  /** Totals per consumer since start. */
  readonly stats: Record<StreamLabel, ConsumerStats>;
  /** The hosts' keys in memory (its `queries` say how often PostgreSQL was asked). */
  readonly hostKeys: HostKeyCache;
  /** The rollout controller (null when disabled by options). */
  readonly rollouts: RolloutController | null;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** start() on a notifier that was already started or stopped: a programming error. */
export class NotifierStateError extends Error {
  override name = 'NotifierStateError';
  readonly retryable = false;
}

function subjectParts(subject: string): string[] {
  return subject.split('.');
}

/** A result must come from the host and app its subject names, and name a rollout id that can exist. */
export function decodeResult(msg: Pick<JsMsg, 'data' | 'subject'>): Result {
  const r = decode(resultSchema, msg.data, msg.subject);
  const [, app, host] = subjectParts(msg.subject);
  if (app !== r.app || host !== r.host) throw new InvalidMessageError(`result on ${msg.subject} is for ${r.app} on ${r.host}`);
  if (!isUuid(r.rollout_id))
    throw new InvalidMessageError(`result on ${msg.subject}: rollout_id ${JSON.stringify(r.rollout_id.slice(0, 64))} is not a rollout id`);
  return r;
}

export function decodeHeartbeat(msg: Pick<JsMsg, 'data' | 'subject'>): Heartbeat {
  const h = decode(heartbeatSchema, msg.data, msg.subject);
  if (subjectParts(msg.subject)[1] !== h.host) throw new InvalidMessageError(`heartbeat on ${msg.subject} is for ${h.host}`);
  return h;
}

export function createNotifier(deps: NotifierDeps): Notifier {
  const options = compileOptions(deps.options);
  const { db, nc } = deps;
  const log = deps.log.child({ component: 'notifier' });
  const registry = deps.registry ?? new Registry();
  const metrics = createNotifierMetrics(registry, () => countHosts(db, { offlineAfterMissed: options.offlineAfterMissed }));
  const hostKeys = new HostKeyCache(deps.hostKeys ?? dbHostKeySource(db), options.hostKeysRefreshMs, log);
  const resultsConsumer = new StreamConsumer<Result>(
    {
      label: 'results',
      authenticate: authenticator('results', hostKeys),
      stream: streams.results.name,
      durable: options.durables.results,
      filterSubject: subjects.allResults,
      decode: decodeResult,
      write: async (items) => {
        const written = await writeResults(db, items);
        // Results just written may finish a wave: the controller (when it runs here) looks now, not at its next tick.
        rollouts?.poke();
        return written;
      },
    },
    options,
    log,
    metrics,
  );
  const heartbeatsConsumer = new StreamConsumer<Heartbeat>(
    {
      label: 'heartbeats',
      authenticate: authenticator('heartbeats', hostKeys),
      stream: streams.hosts.name,
      durable: options.durables.heartbeats,
      filterSubject: subjects.allHeartbeats,
      decode: decodeHeartbeat,
      write: (items) => writeHeartbeats(db, items, options.offlineAfterMissed),
    },
    options,
    log,
    metrics,
  );
  const warnUnplaced = rateLimited(10_000);
  const eventsConsumer = new StreamConsumer<HostEvent>(
    {
      label: 'events',
      authenticate: authenticator('events', hostKeys),
      stream: streams.events.name,
      durable: options.durables.events,
      filterSubject: subjects.allEvents,
      decode: decodeHostEvent,
      kindOf: hostEventKindOf,
      write: async (items) => {
        const { changed, dropped } = await writeHostEvents(db, items);
        // Committed: what it could not place (a run of a job that never was, a result for no rollout of the group) is dropped for good.
        for (const d of dropped) metrics.rejected('events', d.reason, d.kind);
        for (const d of dropped)
          warnUnplaced(`${d.kind}:${d.reason}`, (skipped) => log.warn({ ...d, skipped }, 'host event for an unknown cron job or rollout dropped'));
        return changed;
      },
    },
    options,
    log,
    metrics,
  );
  const consumers = [resultsConsumer, heartbeatsConsumer, eventsConsumer];
  const rollouts = options.rollouts.enabled
    ? new RolloutController({
        db,
        log: log.child({ component: 'rollout-controller' }),
        offlineAfterMissedHeartbeats: options.offlineAfterMissed,
        metrics: createRolloutMetrics(registry, () => rolloutStateCounts(db)),
        tickMs: options.rollouts.tickMs,
        lockPollMs: options.rollouts.lockPollMs,
        clock: options.rollouts.clock,
      })
    : null;
  let state: NotifierState = 'new';
  let stopped: Promise<void> | null = null;
  let clock: NodeJS.Timeout | null = null;
  let ticking = false;
  let regionStreams: { stop(): void } | null = null;
  // Each region's RESULTS, HOSTS and EVENTS, which the hub's streams source (a region out of reach is retried).
  const keepRegionEvents = () =>
    options.regions.length === 0
      ? null
      : keepRegionStreams({
          nc,
          regions: options.regions,
          keys: ['results', 'hosts', 'events'],
          onReady: (region) => log.info({ region }, 'region has its RESULTS, HOSTS and EVENTS streams'),
          onError: (region, err) => log.warn({ region, err }, 'could not make the RESULTS, HOSTS and EVENTS streams in a region (trying again)'),
        });
  // While caught up with the heartbeats, say so: readers judge hosts online or offline only up to the
  // notifier's last sign of life (see touchNotifierClock in @nebula/db).
  const tick = async (jsm: JetStreamManager) => {
    if (ticking) return;
    ticking = true;
    try {
      if (await heartbeatsConsumer.caughtUp(jsm)) await touchNotifierClock(db);
    } catch (err) {
      log.debug({ err }, 'notifier clock not updated');
    } finally {
      ticking = false;
    }
  };

  return {
    get state() {
      return state;
    },
    options,
    registry,
    stats: metrics.stats,
    hostKeys,
    rollouts,
    async start() {
      if (state !== 'new') throw new NotifierStateError(`notifier cannot start when ${state}`);
      state = 'starting';
      try {
        await hostKeys.start();
        const jsm = await jetstreamManager(nc);
        // auto: as many copies as the cluster has servers (up to 3), read from the server's INFO now.
        const copies: StreamOptions = { replicas: options.streamReplicas, clusterSize: () => clusterSizeOf(nc.info), regions: options.regions };
        await ensureStream(jsm, 'results', copies);
        await ensureStream(jsm, 'hosts', copies);
        await ensureStream(jsm, 'events', copies);
        const js = jetstream(nc);
        for (const c of consumers) await c.start(js, jsm);
        clock = setInterval(() => void tick(jsm), NOTIFIER_CLOCK_TICK_MS);
        rollouts?.start();
        regionStreams = keepRegionEvents();
        state = 'running';
        log.info(
          { batchSize: options.batchSize, flushIntervalMs: options.flushIntervalMs, durables: options.durables },
          'consuming results, heartbeats and host events',
        );
      } catch (err) {
        await Promise.all(consumers.map((c) => c.stop()));
        hostKeys.stop();
        state = 'stopped';
        throw err;
      }
    },
    stop() {
      if (stopped) return stopped;
      if (state === 'new') {
        state = 'stopped';
        stopped = Promise.resolve();
        return stopped;
      }
      state = 'stopping';
      if (clock) clearInterval(clock);
      regionStreams?.stop();
      stopped = (async () => {
        await Promise.all([...consumers.map((c) => c.stop()), rollouts?.stop()]);
        hostKeys.stop();
        // Acks are fire-and-forget publishes: make sure they reached the server before saying "stopped".
        if (!nc.isClosed()) await nc.flush().catch(() => undefined);
        state = 'stopped';
        log.info({ stats: metrics.stats }, 'notifier stopped');
      })();
      return stopped;
    },
  };
}
