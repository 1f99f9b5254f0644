import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import type { NatsConnection } from '@nats-io/transport-node';
import type { GroupMessage, HostFacts } from '@nebula/contracts';
import { waitForStreams } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import { Registry } from 'prom-client';
import { Adoption } from './adoption.ts';
import { createBusRights } from './bus-rights.ts';
import type { ConvergeContext } from './converge.ts';
import { type CronScheduler, createCronScheduler } from './cron/cron-scheduler.ts';
import { type GroupAtStart, readGroupAtStart } from './group-at-start.ts';
import { GroupFollower, type GroupHost } from './group-follower.ts';
import { createHeartbeat } from './heartbeat.ts';
import type { RejectReason } from './message-gate.ts';
import { Periodic } from './periodic.ts';
import { describePolicy } from './planner/host-policy.ts';
import type { HostContext } from './planner/plan-host.ts';
import { pruneHostImages } from './prune.ts';
import { Reconciler, type RepairStats } from './reconciler.ts';
import { publishCronRunReport } from './reporting.ts';
import type { ContainerRuntime } from './runtime/container-runtime.ts';
import { ServedImages } from './served-images.ts';
import { ServingSet } from './serving-set.ts';
import { UnhealthyRestarts } from './unhealthy-restarts.ts';
import { unservedContainers } from './unserved-containers.ts';
import { UsageGatherer } from './usage.ts';
import { createWorkerMetrics } from './worker-metrics.ts';
import { compileOptions, type WorkerOptions } from './worker-options.ts';

// Importable from here, as before the worker's stages had files of their own.
export { type RepairStats, summarise } from './reconciler.ts';
export { UnservedContainersError } from './unserved-containers.ts';
export { compileOptions, DEFAULT_OPTIONS, type WorkerOptions } from './worker-options.ts';

/**
 * The worker of one host.
 *
 *   created ──start()──▶ starting ──────────────────────────────▶ running ──stop()──▶ draining ──▶ stopped
 *                         wait for streams APPS, RESULTS, HOSTS      per app: consumer loop     no new messages;
 *                         adopt: per served app, the latest          heartbeat every interval   the action in
 *                           revision (keep what matches, replace     unhealthy containers       flight finishes
 *                           what is stale, create what is missing)     restarted                (containers keep
 *                         remove our containers of unserved apps                                 running)
 *                         (none served and some ours: refused     reconcile every interval:
 *                          unless removeUnserved)                   re-plan the last applied
 *                                                                   revision, repair drift
 *                         with a device group: its newest          the group followed live
 *                          message read first (the apps it          (group-follower.ts): apps
 *                          names are served too; none yet:          added and removed, cron
 *                          nothing is called unserved)              jobs, prunes
 *
 * Nothing is kept between runs: the streams (latest revision per app, latest message per group)
 * and the labelled containers are the state. Failures of one app (at adoption or later) never stop
 * the others.
 *
 * This file holds the states and puts the stages together; each stage has a file of its own:
 * options (worker-options.ts), the apps served and their runners (serving-set.ts), adoption
 * (adoption.ts), unserved containers (unserved-containers.ts), the device group at start
 * (group-at-start.ts), heartbeats (heartbeat.ts), unhealthy restarts (unhealthy-restarts.ts), the
 * reconcile loop (reconciler.ts), the timers (periodic.ts), the consumers and rights asked of the
 * control plane (bus-rights.ts), the refusals counted (worker-metrics.ts).
 */
export type WorkerState = 'created' | 'starting' | 'running' | 'draining' | 'stopped';

export interface WorkerDeps {
  hostId: string;
  /** APP_NAME: served whatever the device group says. */
  apps: readonly string[];
  /** DEVICE_GROUP: the group whose apps (and cron jobs) this host serves too, followed live. */
  deviceGroup?: string | undefined;
  nc: NatsConnection;
  runtime: ContainerRuntime;
  hostFacts: HostFacts;
  log: Logger;
  options?: Partial<WorkerOptions>;
  /** The control plane's message key (`N...`), pinned at join: app messages not signed by it are not applied. */
  controlPlaneKey: string;
  /** This host's key (its user nkey): its results and heartbeats are signed with it. */
  hostKey: KeyPair;
  /**
   * Asks the control plane for this host's consumers of these apps, and the rights to them (in
   * production a renewal of the credential, with the device group); called when a consumer is
   * missing and when the group changes the app set (the worker then reconnects so the new JWT's
   * rights apply). A host never creates a consumer itself.
   */
  provision(apps: readonly string[]): Promise<void>;
  /** The cron scheduler and the image prune a device group drives (default: cron/cron-scheduler.ts, prune.ts). */
  parts?: { createCronScheduler?: typeof createCronScheduler; pruneHostImages?: typeof pruneHostImages };
  /** Where the worker's own metrics go (`nebula_worker_messages_rejected_total`, `nebula_worker_policy_refusals_total`); default a registry of its own. */
  registry?: Registry;
}

export interface Worker {
  readonly state: WorkerState;
  start(): Promise<void>;
  /** Stops taking work, finishes the actions in flight. Does not close the NATS connection. */
  stop(): Promise<void>;
  /** The newest revision applied per served app (null: none yet). */
  applied(): Record<string, { incarnation: number; revision: number } | null>;
  /** The apps served now (APP_NAME and the device group's), sorted. */
  served(): string[];
  /** The device group message this host converged to last (null: none, or no DEVICE_GROUP). */
  group(): GroupMessage | null;
  /** Publishes a heartbeat now. */
  heartbeat(): Promise<void>;
  /** Gathers a usage sample now (also on its own timer when reports are on); the next heartbeats carry it. */
  gatherUsage(): Promise<void>;
  /** Restarts the unhealthy containers whose backoff has passed, now (also on its own timer). */
  checkHealth(): Promise<void>;
  /** Reconciles every app whose turn has come, now (also on its own timer); see `reconcileTick`. */
  reconcile(now?: number): Promise<void>;
  /** Drift repaired per app since start. */
  repairs(): Record<string, RepairStats>;
  /** App messages not applied, per reason: not the control plane's signature, or of a newer schema version (each counted once per stream sequence). */
  rejected(): Record<RejectReason, number>;
  /** Device group messages not applied, per reason (as `rejected`). */
  rejectedGroupMessages(): Record<RejectReason, number>;
}

export function createWorker(deps: WorkerDeps): Worker {
  const opts = compileOptions(deps.options);
  const { hostId, hostKey, runtime, log, deviceGroup } = deps;
  const fixedApps = [...new Set(deps.apps)];
  const host: HostContext = { hostId, cores: deps.hostFacts.cores, memory_mb: deps.hostFacts.memory_mb, maxContainersPerApp: opts.maxContainersPerApp };
  const metrics = createWorkerMetrics({ registry: deps.registry ?? new Registry(), controlPlaneKey: deps.controlPlaneKey, log });
  const ctx: ConvergeContext = { runtime, host, exec: opts, log, policy: opts.hostPolicy, onRefused: metrics.onRefused };
  let state: WorkerState = 'created';
  // Known from start() on; nothing below reads them before.
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  const bus = { js: () => js, jsm: () => jsm };

  const rights = createBusRights({ nc: deps.nc, provision: deps.provision, served: () => set.served(), reconnectTimeoutMs: opts.reconnectTimeoutMs, log });
  const images: ServedImages = new ServedImages({
    runtime,
    log,
    busy: () => set.busy(),
    current: () => set.currentImages(),
    removeOldImages: opts.removeOldImages,
    callTimeoutMs: opts.reportCallTimeoutMs,
    prune: deps.parts?.pruneHostImages ?? pruneHostImages,
  });
  const unserved = unservedContainers({ hostId, host, runtime, served: () => set.served(), opts, log });
  const adoption: Adoption = new Adoption({
    hostId,
    jsm: bus.jsm,
    gate: metrics.gate,
    ctx,
    convergeTimeoutMs: opts.convergeTimeoutMs,
    images,
    log,
    retryLater: (app) => reconciler.oweAdoption(app),
  });
  const reconciler: Reconciler = new Reconciler({ hostId, hostKey, host, runtime, ctx, opts, js: bus.js, adoption, runners: () => set.all(), log });
  /** The apps served now: APP_NAME, and the device group's once its message is read. */
  const set: ServingSet = new ServingSet(
    {
      hostId,
      hostKey,
      gate: metrics.gate,
      provision: rights.provision,
      ...bus,
      ctx,
      opts,
      log,
      adoption,
      reconciler,
      images,
      unserved,
      running: () => state === 'running',
    },
    fixedApps,
  );
  const health = new UnhealthyRestarts({ hostId, runtime, runner: (app) => set.runner(app), opts, log });
  const usage = new UsageGatherer({ runtime, hostId, cores: host.cores, callTimeoutMs: opts.reportCallTimeoutMs });
  async function gatherUsage(): Promise<void> {
    await usage.gather();
  }
  const heartbeat = createHeartbeat({
    hostId,
    hostKey,
    host,
    runtime,
    js: bus.js,
    served: () => set.served(),
    applied: (app) => set.applied(app),
    repairs: (app) => reconciler.stats(app),
    usage,
    deviceGroup,
    opts,
    log,
  });
  const periodic = new Periodic({ active: () => state === 'running', log });

  const cron: CronScheduler | null =
    deviceGroup === undefined
      ? null
      : (deps.parts?.createCronScheduler ?? createCronScheduler)({
          hostId,
          runtime,
          log: log.child({ device_group: deviceGroup }),
          hostPolicy: opts.hostPolicy,
          // A run past its timeout is stopped as the apps' containers are; runs join the apps' own network.
          stopTimeoutSeconds: opts.stopTimeoutSeconds,
          ownNetwork: opts.ownNetwork,
          report: (run) => publishCronRunReport(js, hostKey, run),
        });
  let follower: GroupFollower | null = null;
  /** What the group follower changes on this host (see group-follower.ts). */
  const groupHost: GroupHost = {
    fixedApps,
    served: () => set.served(),
    regrant: rights.regrant,
    addApps: (apps) => set.add(apps),
    dropApps: (apps) => set.drop(apps),
    appStatus: (app) => set.status(app),
    prune: () => images.prune({ pollMs: opts.pollMs, timeoutMs: opts.convergeTimeoutMs }),
    provisionConsumer: rights.provision,
  };

  /** Running: every app's consumer, the device group followed, the timers, a first heartbeat. */
  async function run(atStart: GroupAtStart | null): Promise<void> {
    set.startAll();
    if (deviceGroup !== undefined && cron !== null && atStart !== null) {
      if (atStart.message !== null) cron.update(deviceGroup, atStart.message.deleted ? [] : atStart.message.cron_jobs);
      follower = new GroupFollower({ hostId, group: deviceGroup, hostKey, js, jsm, gate: metrics.groupGate, host: groupHost, cron, log, opts });
      follower.startedWith(atStart.message);
      follower.start();
    }
    periodic.every(opts.heartbeatIntervalMs, 'heartbeat', heartbeat);
    periodic.every(opts.healthCheckIntervalMs, 'health check', () => health.check());
    // Ticks often enough to keep each app's own due time (at most a tenth of the interval late).
    periodic.every(Math.min(1_000, Math.max(10, opts.reconcileIntervalMs / 10)), 'reconcile', async () => {
      await reconciler.tick();
      if (images.pending) await images.removeOld();
    });
    if (opts.reportIntervalMs > 0) {
      periodic.every(opts.reportIntervalMs, 'usage report', gatherUsage);
      // The first sample at once (in the background: it takes a second or so); the next heartbeat carries it.
      void gatherUsage().catch((err: unknown) => log.warn({ err }, 'usage report failed'));
    }
    await heartbeat().catch((err: unknown) => log.warn({ err }, 'first heartbeat failed'));
  }

  return {
    get state() {
      return state;
    },
    applied() {
      return Object.fromEntries(set.served().map((a) => [a, set.applied(a)]));
    },
    served: () => [...set.served()],
    group: () => follower?.current() ?? null,
    rejectedGroupMessages: metrics.rejectedGroupMessages,
    heartbeat,
    gatherUsage,
    checkHealth: () => health.check(),
    reconcile: (now) => reconciler.tick(now),
    repairs: () => reconciler.repairs(),
    rejected: metrics.rejected,
    async start() {
      if (state !== 'created') throw new Error(`worker cannot start when ${state}`);
      state = 'starting';
      log.info(
        { hostPolicy: describePolicy(opts.hostPolicy) },
        'host policy: what app configs may do to this host (WORKER_ALLOW_*, WORKER_ALLOWED_BIND_ROOTS)',
      );
      // With a device group, what is unserved is decided once its message is read (below).
      if (deviceGroup === undefined) {
        try {
          await unserved.refuseEmptyAppList();
        } catch (err) {
          state = 'stopped';
          throw err;
        }
      }
      jsm = await jetstreamManager(deps.nc);
      js = jetstream(deps.nc);
      // The API owns APPS and GROUPS, the notifier RESULTS, HOSTS and EVENTS: the worker only waits for them to exist.
      await waitForStreams(jsm, deviceGroup === undefined ? ['apps', 'results', 'hosts'] : ['apps', 'results', 'hosts', 'groups', 'events'], {
        retryMs: opts.retryBaseMs,
        onWaiting: (msg, fields) => log.warn(fields, msg),
      });
      const atStart =
        deviceGroup === undefined ? null : await readGroupAtStart({ jsm, groupGate: metrics.groupGate, fixedApps, regrant: rights.regrant, log }, deviceGroup);
      if (atStart?.serve) set.serve(atStart.serve);
      await set.open();
      // A group with no message yet has said nothing: no container of ours is called unserved until it does.
      if (atStart === null) await unserved.remove();
      else if (atStart.message !== null) await unserved.remove(atStart.keep);
      if (state !== 'starting') return; // stopped while adopting
      state = 'running';
      await run(atStart);
      log.info(
        { host: hostId, apps: set.served(), ...(deviceGroup !== undefined ? { device_group: deviceGroup } : {}), cores: host.cores, memory_mb: host.memory_mb },
        'worker running',
      );
    },
    async stop() {
      if (state === 'stopped' || state === 'draining') return;
      if (state === 'created') {
        state = 'stopped';
        return;
      }
      state = 'draining';
      periodic.clear();
      // The group follower first: it may be adding or dropping runners.
      await follower?.stop();
      await cron?.stop();
      await set.stopAll();
      state = 'stopped';
      log.info('worker stopped; containers keep running');
    },
  };
}
