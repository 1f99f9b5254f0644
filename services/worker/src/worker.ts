import { randomUUID } from 'node:crypto';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import type { NatsConnection } from '@nats-io/transport-node';
import { type AppMessage, type GroupMessage, type HostFacts, MESSAGE_VERSION } from '@nebula/contracts';
import { waitForStreams } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import { Counter, Registry } from 'prom-client';
// Imported, not read at run time: the release bundle (tools/src/release) carries it inline.
import workerPackage from '../package.json' with { type: 'json' };
import { AppRunner, type RunnerOptions } from './app-runner.ts';
import { appSetChange } from './app-set.ts';
import { type ConvergeContext, convergeApp } from './converge.ts';
import { type CronScheduler, createCronScheduler } from './cron/cron-scheduler.ts';
import { errorText, HostPolicyError, NewerMessageVersionError, WorkerError } from './errors.ts';
import { applyAppPlan, type ExecutorOptions } from './executor.ts';
import { GroupFollower, type GroupHost as GroupHostPart } from './group-follower.ts';
import { reconnectForNewRights } from './identity/bus-connection.ts';
import { createAppMessageGate, createGroupMessageGate, type RejectReason, readNewestGroupMessage, readNewestRevision } from './message-gate.ts';
import { nextRestartAllowedAt, type RestartRecord, reconcileDelay } from './planner/backoff.ts';
import { DEFAULT_HOST_POLICY, describePolicy, type HostPolicy } from './planner/host-policy.ts';
import { type HostContext, planDrift, planHost, unservedApps } from './planner/plan-host.ts';
import { pruneHostImages } from './prune.ts';
import { buildResult, containerStates, publishCronRunReport, publishHeartbeat, publishResult } from './reporting.ts';
import { type ContainerRuntime, LABELS } from './runtime/container-runtime.ts';
import { ServedImages } from './served-images.ts';
import { byCodeUnit } from './text-order.ts';
import { UsageGatherer } from './usage.ts';
import { handlingOf } from './wave-handling.ts';

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
 */
export type WorkerState = 'created' | 'starting' | 'running' | 'draining' | 'stopped';

export interface WorkerOptions extends RunnerOptions, ExecutorOptions {
  heartbeatIntervalMs: number;
  healthCheckIntervalMs: number;
  version: string;
  /** Each served app is re-planned against its last applied revision this often. */
  reconcileIntervalMs: number;
  /** After failed reconciles the wait doubles, up to this. */
  reconcileMaxBackoffMs: number;
  /** With no app served, remove the containers of ours found at start instead of refusing to start. */
  removeUnserved: boolean;
  /** Containers one app may have on this host. */
  maxContainersPerApp: number;
  /** The wait between restarts of a container that stays unhealthy doubles up to this. */
  unhealthyRestartMaxBackoffMs: number;
  /** Remove an app's replaced images after a successful apply (the previous one is kept). */
  removeOldImages: boolean;
  /** What a revision may do to this host; default: no privileged, devices, host network, bind mount or Docker socket. */
  hostPolicy: HostPolicy;
  /** Usage is gathered for reports this often; heartbeats carry the latest sample. 0: no reports. */
  reportIntervalMs: number;
  /** The deadline of each call a usage sample makes (engine stats, info, statfs). */
  reportCallTimeoutMs: number;
  /** After a renewal for a new app set, the connection must be back (with the new rights) within this. */
  reconnectTimeoutMs: number;
}

/** What a heartbeat says about the drift repaired for one app since the worker started. */
export interface RepairStats {
  repairs: number;
  last: { at: string; what: string } | null;
}

/** A worker with no app to serve found containers of ours at start and was not told to remove them. */
export class UnservedContainersError extends WorkerError {
  override name = 'UnservedContainersError';
  readonly retryable = false;
}

const PACKAGE_VERSION = workerPackage.version;

export const DEFAULT_OPTIONS: WorkerOptions = {
  ackWaitMs: 30_000,
  fetchExpiresMs: 30_000,
  retryBaseMs: 1_000,
  retryMaxMs: 60_000,
  maxRestartWaitSeconds: 0,
  convergeTimeoutMs: 30 * 60_000,
  stuckAfterMs: 60_000,
  stopTimeoutSeconds: 5,
  rollSettleMs: 2_000,
  settleMs: 10_000,
  rollTimeoutMs: 60_000,
  pollMs: 250,
  ownNetwork: 'nebula',
  heartbeatIntervalMs: 5_000,
  healthCheckIntervalMs: 10_000,
  version: PACKAGE_VERSION,
  maxParallelStarts: 8,
  reconcileIntervalMs: 30_000,
  reconcileMaxBackoffMs: 300_000,
  removeUnserved: false,
  maxContainersPerApp: 100,
  unhealthyRestartMaxBackoffMs: 300_000,
  removeOldImages: true,
  hostPolicy: DEFAULT_HOST_POLICY,
  reportIntervalMs: 60_000,
  reportCallTimeoutMs: 10_000,
  reconnectTimeoutMs: 30_000,
};

/** Defaults applied and checked once (a zero or negative interval would spin). */
export function compileOptions(partial: Partial<WorkerOptions> = {}): WorkerOptions {
  const o: WorkerOptions = { ...DEFAULT_OPTIONS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  for (const k of [
    'ackWaitMs',
    'fetchExpiresMs',
    'retryBaseMs',
    'retryMaxMs',
    'heartbeatIntervalMs',
    'healthCheckIntervalMs',
    'rollTimeoutMs',
    'convergeTimeoutMs',
    'stuckAfterMs',
    'reconcileIntervalMs',
    'reconcileMaxBackoffMs',
    'unhealthyRestartMaxBackoffMs',
    'reportCallTimeoutMs',
    'reconnectTimeoutMs',
  ] as const) {
    if (!(o[k] > 0)) throw new RangeError(`worker option ${k} must be positive (got ${o[k]})`);
  }
  for (const k of ['maxContainersPerApp', 'maxParallelStarts'] as const)
    if (!(Number.isInteger(o[k]) && (o[k] ?? 0) >= 1)) throw new RangeError(`worker option ${k} must be a positive integer`);
  for (const k of ['stopTimeoutSeconds', 'maxRestartWaitSeconds', 'rollSettleMs', 'pollMs', 'settleMs', 'reportIntervalMs'] as const) {
    if (!((o[k] ?? 0) >= 0)) throw new RangeError(`worker option ${k} must not be negative`);
  }
  const p = o.hostPolicy;
  const paths = [...p.allowedBindRoots, ...p.dockerSockets, ...(Array.isArray(p.allowDevices) ? p.allowDevices : [])];
  for (const path of paths) if (!path.startsWith('/')) throw new RangeError(`worker option hostPolicy: ${JSON.stringify(path)} is not an absolute path`);
  return o;
}

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

/** The lines joined with `; `, at most `max` characters: the first ones, then how many more. */
export function summarise(lines: readonly string[], max: number): string {
  let out = '';
  for (const [i, line] of lines.entries()) {
    const next = out === '' ? line : `${out}; ${line}`;
    const rest = lines.length - i - 1;
    if (next.length + (rest > 0 ? 16 : 0) > max)
      return out === '' ? `${line.slice(0, max - 16)}... (${lines.length} in all)` : `${out}; ... (${lines.length - i} more)`;
    out = next;
  }
  return out;
}

export function createWorker(deps: WorkerDeps): Worker {
  const opts = compileOptions(deps.options);
  const { hostId, runtime, log } = deps;
  const fixedApps = [...new Set(deps.apps)];
  /** The apps served now: APP_NAME, and the device group's once its message is read. */
  let served: string[] = [...fixedApps];
  const deviceGroup = deps.deviceGroup;
  const host: HostContext = { hostId, cores: deps.hostFacts.cores, memory_mb: deps.hostFacts.memory_mb, maxContainersPerApp: opts.maxContainersPerApp };
  const registry = deps.registry ?? new Registry();
  const refusals = new Counter({
    name: 'nebula_worker_policy_refusals_total',
    help: "Revisions refused by this host's policy (WORKER_ALLOW_*), per rule they break",
    labelNames: ['rule', 'app'],
    registers: [registry],
  });
  const onRefused: ConvergeContext['onRefused'] = (app, violations) => {
    for (const rule of new Set(violations.map((v) => v.rule))) refusals.inc({ rule, app });
  };
  const ctx: ConvergeContext = { runtime, host, exec: opts, log, policy: opts.hostPolicy, onRefused };
  let state: WorkerState = 'created';
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  const runners = new Map<string, AppRunner>();
  const timers: NodeJS.Timeout[] = [];
  /** Per app: when its next reconcile is due, failures in a row, and whether its adoption is owed. */
  const reconciles = new Map<string, { dueAt: number; failures: number; adoptPending: boolean; stats: RepairStats }>();
  const restarts = new Map<string, RestartRecord>();
  const images = new ServedImages({
    runtime,
    log,
    busy: () => [...runners.values()].some((r) => r.state.busy),
    current: () => [...runners.values()].flatMap((r) => (r.state.lastApplied === null ? [] : [r.state.lastApplied.config.docker_image])),
    removeOldImages: opts.removeOldImages,
    callTimeoutMs: opts.reportCallTimeoutMs,
    prune: deps.parts?.pruneHostImages ?? pruneHostImages,
  });
  /** Per app: why its adoption failed (cleared once a revision is applied): what a group result says of it. */
  const adoptErrors = new Map<string, string>();

  const rejectedCounter = new Counter({
    name: 'nebula_worker_messages_rejected_total',
    help: 'App messages not applied: reason "signature" (not signed by the control plane key pinned at join), "newer_version" (of a newer schema version than this worker understands: upgrade the worker)',
    labelNames: ['reason'],
    registers: [registry],
  });
  const rejected: Record<RejectReason, number> = { signature: 0, newer_version: 0 };
  const gate = createAppMessageGate({
    controlPlaneKey: deps.controlPlaneKey,
    log,
    onRejected: (reason) => {
      rejected[reason] += 1;
      rejectedCounter.inc({ reason });
    },
  });

  const groupRejectedCounter = new Counter({
    name: 'nebula_worker_group_messages_rejected_total',
    help: 'Device group messages not applied: reason "signature" (not signed by the control plane key pinned at join), "newer_version" (of a newer schema version than this worker understands)',
    labelNames: ['reason'],
    registers: [registry],
  });
  const groupRejected: Record<RejectReason, number> = { signature: 0, newer_version: 0 };
  const groupGate = createGroupMessageGate({
    controlPlaneKey: deps.controlPlaneKey,
    log,
    onRejected: (reason) => {
      groupRejected[reason] += 1;
      groupRejectedCounter.inc({ reason });
    },
  });

  /** One request to the control plane at a time: several apps missing their consumer ask once. */
  let provisioning: Promise<void> | null = null;
  function provision(): Promise<void> {
    provisioning ??= deps.provision(served).finally(() => {
      provisioning = null;
    });
    return provisioning;
  }

  /** A renewal for this app set, then a new connection: the JWT's rights apply only from a connect on. */
  async function regrant(apps: readonly string[]): Promise<void> {
    await deps.provision(apps);
    await reconnectForNewRights(deps.nc, opts.reconnectTimeoutMs);
    log.info({ apps }, 'reconnected with the rights of the new app set');
  }

  async function latestRevision(app: string): Promise<AppMessage | null> {
    return readNewestRevision(jsm, app, gate);
  }

  /**
   * Adopts the latest revision of the app (for a host outside its wave, the wave's base); returns
   * what it changed, and whether it was a base (never reported). Throws when it fails.
   */
  async function adoptNow(
    runner: AppRunner,
  ): Promise<{ message: AppMessage; out: Awaited<ReturnType<typeof convergeApp>>; changed: number; base: boolean } | null> {
    const app = runner.app;
    const latest = await latestRevision(app);
    if (latest === null) {
      log.info({ app }, 'no revision published yet');
      return null;
    }
    const handling = handlingOf(latest, hostId, { reported: null, applied: null });
    if (handling.kind === 'nothing') {
      log.info({ app, incarnation: latest.incarnation, revision: latest.revision }, handling.why);
      return null;
    }
    const target = handling.target;
    // The same deadline as a revision from the stream: a hung engine or registry cannot hold the start.
    const out = await convergeApp(ctx, target, { adopt: true, signal: AbortSignal.timeout(opts.convergeTimeoutMs) });
    runner.state.applied = { incarnation: target.incarnation, revision: target.revision };
    runner.state.lastApplied = target;
    adoptErrors.delete(app);
    images.record(app, target.config.docker_image, out.containers);
    log.info(
      { app, incarnation: target.incarnation, revision: target.revision, ...(handling.kind === 'base' ? { baseOf: latest.revision } : {}), ...out.outcome },
      handling.kind === 'base' ? "adopted the wave's base (outside the wave)" : 'adopted',
    );
    return { message: target, out, changed: out.outcome.created + out.outcome.replaced + out.outcome.removed, base: handling.kind === 'base' };
  }

  async function adopt(runner: AppRunner): Promise<void> {
    try {
      await adoptNow(runner);
    } catch (err) {
      adoptErrors.set(runner.app, errorText(err));
      if (err instanceof HostPolicyError) {
        // The policy does not change while the worker runs: trying again would be refused again. The
        // app's containers stay as they are; a later revision that passes is applied as usual.
        log.error({ app: runner.app, err }, "adoption refused by this host's policy: the app's containers are left as they are");
        return;
      }
      if (err instanceof NewerMessageVersionError) {
        // This worker will not understand it later either; its consumer reports it failed.
        log.error({ app: runner.app, err }, `${err.message}: the app's containers are left as they are`);
        return;
      }
      // The consumer delivers the revision again if it is not acked yet, and the reconcile loop
      // tries the adoption again (the revision may have been acked in an earlier life).
      const r = reconciles.get(runner.app);
      if (r) r.adoptPending = true;
      log.warn({ app: runner.app, err }, 'adoption failed: the reconcile loop will try again');
    }
  }

  /**
   * One reconcile of one app, in its runner's turn: the last applied revision planned again against
   * what the engine shows (planDrift), and what drifted put back; or the adoption that failed at
   * start tried again. Throws when it fails (the caller backs off).
   */
  async function reconcileApp(runner: AppRunner): Promise<void> {
    const app = runner.app;
    const r = reconciles.get(app);
    if (r === undefined) return;
    const applied = runner.state.lastApplied;
    if (applied === null) {
      if (!r.adoptPending) return;
      const done = await adoptNow(runner).catch((err: unknown) => {
        if (!(err instanceof NewerMessageVersionError)) throw err;
        log.error({ app, err }, `${err.message}: the app's containers are left as they are`);
        return null;
      });
      r.adoptPending = false;
      if (done === null) return;
      noteRepair(r.stats, app, [`adopted revision ${done.message.revision} after a failed start (${done.changed} changed)`]);
      if (done.base) return; // outside the wave: nothing to report
      // Its delivery may have been reported failed (and terminated): the newest result says applied.
      const { message, out } = done;
      await publishResult(
        js,
        deps.hostKey,
        buildResult({
          message,
          host: hostId,
          status: 'applied',
          imageDigest: out.imageDigest,
          containers: out.containers,
          pullMs: out.pullMs,
          applyMs: out.applyMs,
        }),
      )
        .then(() => {
          runner.state.reported = { incarnation: message.incarnation, revision: message.revision };
        })
        .catch((err: unknown) => log.warn({ app, err }, 'could not report the adopted revision'));
      return;
    }
    const drift = planDrift(applied, await runtime.listContainers(hostId, { signal: AbortSignal.timeout(opts.convergeTimeoutMs) }), host);
    if (drift.repairs.length === 0) return;
    log.warn({ app, revision: applied.revision, repairs: drift.repairs }, 'drift found: repairing');
    // Converging in adopt mode plans the same again and applies it (pulling only a missing image).
    await convergeApp(ctx, applied, { adopt: true, signal: AbortSignal.timeout(opts.convergeTimeoutMs) });
    noteRepair(r.stats, app, drift.repairs);
  }

  function noteRepair(stats: RepairStats, app: string, what: string[]): void {
    const at = new Date().toISOString();
    for (const w of what) log.info({ app, repair: w }, 'repaired');
    stats.repairs += what.length;
    stats.last = { at, what: summarise(what, 1_000) };
  }

  /**
   * Reconciles each app whose time has come and whose runner is idle; the next time is one interval
   * later, or later still after failures in a row (reconcileDelay).
   */
  async function reconcileTick(now = Date.now()): Promise<void> {
    await Promise.all(
      [...runners.values()].map(async (runner) => {
        const r = reconciles.get(runner.app);
        if (r === undefined || now < r.dueAt) return;
        try {
          const done = await runner.whenIdle(() => reconcileApp(runner));
          if (done === 'skipped') return; // a message is being handled: it converges the app anyway
          r.failures = 0;
        } catch (err) {
          r.failures += 1;
          log.warn(
            { app: runner.app, err, failures: r.failures, nextInMs: reconcileDelay(opts.reconcileIntervalMs, r.failures, opts.reconcileMaxBackoffMs) },
            'reconcile failed',
          );
        }
        r.dueAt = now + reconcileDelay(opts.reconcileIntervalMs, r.failures, opts.reconcileMaxBackoffMs);
      }),
    );
  }

  /**
   * A worker started with an empty APP_NAME (a typo, a lost variable) would otherwise wipe its host:
   * with no app served, containers of ours are a reason to refuse to start, unless told.
   */
  async function refuseEmptyAppList(): Promise<void> {
    if (served.length > 0 || opts.removeUnserved) return;
    const observed = await runtime.listContainers(hostId);
    const gone = unservedApps(observed, served, hostId);
    if (gone.length === 0) return;
    const names = observed
      .filter((c) => gone.includes(c.labels[LABELS.app] ?? ''))
      .map((c) => c.name)
      .sort();
    throw new UnservedContainersError(
      `no app is served (APP_NAME is empty) but this host runs ${names.length} container(s) of ours, of the app(s) ${gone.join(', ')}: refusing to start. Set APP_NAME to the apps to serve (or DEVICE_GROUP to a device group), or REMOVE_UNSERVED=true to remove them`,
    );
  }

  /** Removes our containers of every app not in `keep` (by default: the apps served). */
  async function removeUnserved(keep: readonly string[] = served): Promise<void> {
    try {
      const observed = await runtime.listContainers(hostId);
      const gone = unservedApps(observed, keep, hostId);
      if (gone.length === 0) return;
      const plan = planHost(
        gone.map((app) => ({ app, present: false as const, reason: 'app not served by this host' })),
        observed,
        host,
      );
      for (const p of plan.apps) {
        for (const s of p.steps)
          if (s.kind === 'remove')
            log.warn({ app: p.app, container: s.current.name, id: s.current.id.slice(0, 12) }, 'removing a container of an app this host no longer serves');
        await applyAppPlan(runtime, p, opts);
      }
    } catch (err) {
      log.warn({ err }, 'could not remove containers of unserved apps');
    }
  }

  const usage = new UsageGatherer({ runtime, hostId, cores: host.cores, callTimeoutMs: opts.reportCallTimeoutMs });
  async function gatherUsage(): Promise<void> {
    await usage.gather();
  }

  // This process's nonce in every heartbeat: another worker with the same host id shows as a second one.
  const instance = randomUUID();
  async function heartbeat(): Promise<void> {
    let observed: Awaited<ReturnType<ContainerRuntime['listContainers']>> = [];
    try {
      observed = await runtime.listContainers(hostId);
    } catch (err) {
      log.warn({ err }, 'heartbeat without container states: engine unreachable');
    }
    await publishHeartbeat(js, deps.hostKey, {
      v: MESSAGE_VERSION,
      host: hostId,
      apps: served.map((app) => {
        const a = runners.get(app)?.state.applied ?? null;
        const stats = reconciles.get(app)?.stats;
        return {
          app,
          incarnation: a?.incarnation ?? null,
          revision: a?.revision ?? null,
          containers: containerStates(observed, app),
          ...(stats !== undefined ? { repairs: stats.repairs, last_repair: stats.last } : {}),
        };
      }),
      cores: Math.max(1, Math.round(host.cores)),
      memory_mb: Math.max(1, Math.round(host.memory_mb)),
      worker_version: opts.version,
      interval_seconds: opts.heartbeatIntervalMs / 1000,
      instance,
      ...(usage.latest !== null ? { usage: usage.latest } : {}),
      ...(deviceGroup !== undefined ? { device_group: deviceGroup } : {}),
      at: new Date().toISOString(),
    });
  }

  /**
   * Docker marks a container unhealthy but never restarts it: we do (as the original did), at once
   * the first time, then ever less often while it stays unhealthy (nextRestartAllowedAt).
   */
  async function restartUnhealthy(): Promise<void> {
    const observed = await runtime.listContainers(hostId);
    const seen = new Set(observed.map((c) => c.id));
    for (const id of restarts.keys()) if (!seen.has(id)) restarts.delete(id);
    for (const c of observed) {
      if (c.health === 'healthy') restarts.delete(c.id);
      const app = c.labels[LABELS.app] ?? '';
      const runner = runners.get(app);
      if (c.health !== 'unhealthy' || c.state !== 'running' || runner === undefined || runner.state.busy) continue;
      const record = restarts.get(c.id);
      const now = Date.now();
      if (now < nextRestartAllowedAt(record, opts.healthCheckIntervalMs, opts.unhealthyRestartMaxBackoffMs)) continue;
      log.warn({ app, container: c.name, restarts: record?.restarts ?? 0 }, 'restarting an unhealthy container');
      restarts.set(c.id, { restarts: (record?.restarts ?? 0) + 1, lastAt: now });
      await runtime.restart(c.id, opts.stopTimeoutSeconds);
    }
  }

  function every(ms: number, what: string, fn: () => Promise<void>): void {
    let running = false;
    const t = setInterval(() => {
      if (running || state !== 'running') return;
      running = true;
      fn()
        .catch((err: unknown) => log.warn({ err }, `${what} failed`))
        .finally(() => (running = false));
    }, ms);
    t.unref();
    timers.push(t);
  }

  function addRunner(app: string): AppRunner {
    const onApplied = (msg: AppMessage, containers: readonly { image?: string | undefined }[]) => {
      adoptErrors.delete(msg.app);
      images.record(msg.app, msg.config.docker_image, containers);
      void images.removeOld().catch((err: unknown) => log.warn({ err }, 'could not remove old images'));
    };
    const runner = new AppRunner({ app, hostId, hostKey: deps.hostKey, gate, provision, js, jsm, ctx, opts, log, onApplied });
    runners.set(app, runner);
    reconciles.set(app, { dueAt: Date.now() + opts.reconcileIntervalMs, failures: 0, adoptPending: false, stats: { repairs: 0, last: null } });
    return runner;
  }

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
          report: (run) => publishCronRunReport(js, deps.hostKey, run),
        });
  let follower: GroupFollower | null = null;

  /** What the group follower changes on this host (see group-follower.ts). */
  const groupHost: GroupHostPart = {
    fixedApps,
    served: () => served,
    regrant,
    async addApps(apps) {
      const added = apps.filter((a) => !runners.has(a)).map(addRunner);
      served = [...new Set([...served, ...apps])].sort(byCodeUnit);
      // The first convergence of each added app is what the group result waits for.
      await Promise.all(added.map(adopt));
      if (state === 'running') for (const r of added) r.start();
    },
    async dropApps(apps) {
      const gone = new Set(apps);
      served = served.filter((a) => !gone.has(a));
      await Promise.all(
        apps.map(async (app) => {
          await runners.get(app)?.stop();
          runners.delete(app);
          reconciles.delete(app);
          adoptErrors.delete(app);
          images.forget(app);
        }),
      );
      await removeUnserved();
    },
    appStatus(app) {
      const error = adoptErrors.get(app);
      if (!runners.has(app)) return { status: 'failed', error: 'not served by this host' };
      return error === undefined ? { status: 'applied', error: null } : { status: 'failed', error };
    },
    prune: () => images.prune({ pollMs: opts.pollMs, timeoutMs: opts.convergeTimeoutMs }),
    provisionConsumer: provision,
  };

  /**
   * With a device group, before anything is called unserved: the group's newest message (by direct
   * get), its apps served too. Getting the rights to them needs a renewal and a reconnect; when that
   * fails, the group follower tries again with the same message.
   */
  async function readGroupAtStart(group: string): Promise<{ message: GroupMessage | null; keep: string[] }> {
    const message = await readNewestGroupMessage(jsm, group, groupGate).catch((err: unknown) => {
      log.error({ err, device_group: group }, 'the newest message of the device group cannot be read: waiting for the next one');
      return null;
    });
    const wanted = appSetChange({ fixed: fixedApps, served: fixedApps, group: message === null || message.deleted ? [] : message.apps });
    if (wanted.added.length > 0) {
      try {
        await regrant(wanted.next);
        served = wanted.next;
      } catch (err) {
        log.warn({ err, apps: wanted.added }, 'could not get the rights to the device group apps at start: tried again with the group message');
      }
    }
    return { message, keep: wanted.next };
  }

  return {
    get state() {
      return state;
    },
    applied() {
      return Object.fromEntries(served.map((a) => [a, runners.get(a)?.state.applied ?? null]));
    },
    served: () => [...served],
    group: () => follower?.current() ?? null,
    rejectedGroupMessages() {
      return { ...groupRejected };
    },
    heartbeat,
    gatherUsage,
    checkHealth: restartUnhealthy,
    reconcile: reconcileTick,
    repairs() {
      return Object.fromEntries([...reconciles].map(([app, r]) => [app, { ...r.stats }]));
    },
    rejected() {
      return { ...rejected };
    },
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
          await refuseEmptyAppList();
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
      const atStart = deviceGroup === undefined ? null : await readGroupAtStart(deviceGroup);
      for (const app of served) addRunner(app);
      await Promise.all([...runners.values()].map(adopt));
      // A group with no message yet has said nothing: no container of ours is called unserved until it does.
      if (atStart === null) await removeUnserved();
      else if (atStart.message !== null) await removeUnserved(atStart.keep);
      if (state !== 'starting') return; // stopped while adopting
      state = 'running';
      for (const r of runners.values()) r.start();
      if (deviceGroup !== undefined && cron !== null && atStart !== null) {
        if (atStart.message !== null) cron.update(deviceGroup, atStart.message.deleted ? [] : atStart.message.cron_jobs);
        follower = new GroupFollower({ hostId, group: deviceGroup, hostKey: deps.hostKey, js, jsm, gate: groupGate, host: groupHost, cron, log, opts });
        follower.startedWith(atStart.message);
        follower.start();
      }
      every(opts.heartbeatIntervalMs, 'heartbeat', heartbeat);
      every(opts.healthCheckIntervalMs, 'health check', restartUnhealthy);
      // Ticks often enough to keep each app's own due time (at most a tenth of the interval late).
      every(Math.min(1_000, Math.max(10, opts.reconcileIntervalMs / 10)), 'reconcile', async () => {
        await reconcileTick();
        if (images.pending) await images.removeOld();
      });
      if (opts.reportIntervalMs > 0) {
        every(opts.reportIntervalMs, 'usage report', gatherUsage);
        // The first sample at once (in the background: it takes a second or so); the next heartbeat carries it.
        void gatherUsage().catch((err: unknown) => log.warn({ err }, 'usage report failed'));
      }
      await heartbeat().catch((err: unknown) => log.warn({ err }, 'first heartbeat failed'));
      log.info(
        { host: hostId, apps: served, ...(deviceGroup !== undefined ? { device_group: deviceGroup } : {}), cores: host.cores, memory_mb: host.memory_mb },
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
      for (const t of timers) clearInterval(t);
      // The group follower first: it may be adding or dropping runners.
      await follower?.stop();
      await cron?.stop();
      await Promise.all([...runners.values()].map((r) => r.stop()));
      state = 'stopped';
      log.info('worker stopped; containers keep running');
    },
  };
}
