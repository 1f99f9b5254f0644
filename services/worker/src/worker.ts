import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type AppMessage, appMessageSchema, type HostFacts, streams, subjects } from '@nebula/contracts';
import { decode, waitForStreams } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import { AppRunner, type RunnerOptions } from './app-runner.ts';
import { type ConvergeContext, convergeApp } from './converge.ts';
import { applyAppPlan, type ExecutorOptions } from './executor.ts';
import { type HostContext, planHost, unservedApps } from './planner/plan-host.ts';
import { type ContainerRuntime, LABELS } from './runtime/container-runtime.ts';
import { containerStates, publishHeartbeat } from './reporting.ts';

/**
 * The worker of one host.
 *
 *   created ──start()──▶ starting ──────────────────────────────▶ running ──stop()──▶ draining ──▶ stopped
 *                         wait for streams APPS, RESULTS, HOSTS      per app: consumer loop     no new messages;
 *                         adopt: per served app, the latest          heartbeat every interval   the action in
 *                           revision (keep what matches, replace     unhealthy containers       flight finishes
 *                           what is stale, create what is missing)     restarted                (containers keep
 *                         remove our containers of unserved apps                                 running)
 *
 * Nothing is kept between runs: the stream (latest revision per app) and the labelled containers
 * are the state. Failures of one app (at adoption or later) never stop the others.
 */
export type WorkerState = 'created' | 'starting' | 'running' | 'draining' | 'stopped';

export interface WorkerOptions extends RunnerOptions, ExecutorOptions {
  heartbeatIntervalMs: number;
  healthCheckIntervalMs: number;
  version: string;
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const DEFAULT_OPTIONS: WorkerOptions = {
  ackWaitMs: 30_000,
  maxAckPending: 8,
  inactiveThresholdMs: 72 * 3_600_000,
  fetchExpiresMs: 30_000,
  retryBaseMs: 1_000,
  retryMaxMs: 60_000,
  maxRestartWaitSeconds: 0,
  convergeTimeoutMs: 30 * 60_000,
  stuckAfterMs: 60_000,
  stopTimeoutSeconds: 5,
  rollSettleMs: 2_000,
  rollTimeoutMs: 60_000,
  pollMs: 250,
  ownNetwork: 'nebula',
  heartbeatIntervalMs: 5_000,
  healthCheckIntervalMs: 10_000,
  version: PACKAGE_VERSION,
};

/** Defaults applied and checked once (a zero or negative interval would spin). */
export function compileOptions(partial: Partial<WorkerOptions> = {}): WorkerOptions {
  const o: WorkerOptions = { ...DEFAULT_OPTIONS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  for (const k of ['ackWaitMs', 'fetchExpiresMs', 'retryBaseMs', 'retryMaxMs', 'heartbeatIntervalMs', 'healthCheckIntervalMs', 'inactiveThresholdMs', 'rollTimeoutMs', 'convergeTimeoutMs', 'stuckAfterMs'] as const) {
    if (!(o[k] > 0)) throw new RangeError(`worker option ${k} must be positive (got ${o[k]})`);
  }
  for (const k of ['maxAckPending'] as const) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new RangeError(`worker option ${k} must be a positive integer`);
  for (const k of ['stopTimeoutSeconds', 'maxRestartWaitSeconds', 'rollSettleMs', 'pollMs'] as const) {
    if (!(o[k] >= 0)) throw new RangeError(`worker option ${k} must not be negative`);
  }
  return o;
}

export interface WorkerDeps {
  hostId: string;
  apps: readonly string[];
  nc: NatsConnection;
  runtime: ContainerRuntime;
  hostFacts: HostFacts;
  log: Logger;
  options?: Partial<WorkerOptions>;
}

export interface Worker {
  readonly state: WorkerState;
  start(): Promise<void>;
  /** Stops taking work, finishes the actions in flight. Does not close the NATS connection. */
  stop(): Promise<void>;
  /** The newest revision applied per app (null: none yet). */
  applied(): Record<string, { incarnation: number; revision: number } | null>;
  /** Publishes a heartbeat now. */
  heartbeat(): Promise<void>;
}

export function createWorker(deps: WorkerDeps): Worker {
  const opts = compileOptions(deps.options);
  const { hostId, runtime, log } = deps;
  const apps = [...new Set(deps.apps)];
  const host: HostContext = { hostId, cores: deps.hostFacts.cores, memory_mb: deps.hostFacts.memory_mb };
  const ctx: ConvergeContext = { runtime, host, exec: opts, log };
  let state: WorkerState = 'created';
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  const runners = new Map<string, AppRunner>();
  const timers: NodeJS.Timeout[] = [];

  async function latestRevision(app: string): Promise<AppMessage | null> {
    const last = await jsm.streams.getMessage(streams.apps.name, { last_by_subj: subjects.app(app) });
    return last === null ? null : decode(appMessageSchema, last.data, last.subject);
  }

  async function adopt(runner: AppRunner): Promise<void> {
    const app = runner.app;
    try {
      const latest = await latestRevision(app);
      if (latest === null) {
        log.info({ app }, 'no revision published yet');
        return;
      }
      const out = await convergeApp(ctx, latest, { adopt: true });
      runner.state.applied = { incarnation: latest.incarnation, revision: latest.revision };
      log.info({ app, incarnation: latest.incarnation, revision: latest.revision, ...out.outcome }, 'adopted');
    } catch (err) {
      // The consumer will deliver the revision again if it is not applied yet: nothing is lost.
      log.warn({ app, err }, 'adoption failed');
    }
  }

  async function removeUnserved(): Promise<void> {
    try {
      const observed = await runtime.listContainers(hostId);
      const gone = unservedApps(observed, apps, hostId);
      if (gone.length === 0) return;
      const plan = planHost(gone.map((app) => ({ app, present: false as const, reason: 'app not served by this host' })), observed, host);
      for (const p of plan.apps) {
        log.info({ app: p.app, containers: p.steps.length }, 'removing containers of an app this host no longer serves');
        await applyAppPlan(runtime, p, opts);
      }
    } catch (err) {
      log.warn({ err }, 'could not remove containers of unserved apps');
    }
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
    await publishHeartbeat(js, {
      v: 1,
      host: hostId,
      apps: apps.map((app) => {
        const a = runners.get(app)?.state.applied ?? null;
        return { app, incarnation: a?.incarnation ?? null, revision: a?.revision ?? null, containers: containerStates(observed, app) };
      }),
      cores: Math.max(1, Math.round(host.cores)),
      memory_mb: Math.max(1, Math.round(host.memory_mb)),
      worker_version: opts.version,
      interval_seconds: opts.heartbeatIntervalMs / 1000,
      instance,
      at: new Date().toISOString(),
    });
  }

  /** Docker marks a container unhealthy but never restarts it: we do (as the original did). */
  async function restartUnhealthy(): Promise<void> {
    const observed = await runtime.listContainers(hostId);
    for (const c of observed) {
      const app = c.labels[LABELS.app] ?? '';
      const runner = runners.get(app);
      if (c.health !== 'unhealthy' || c.state !== 'running' || runner === undefined || runner.state.busy) continue;
      log.warn({ app, container: c.name }, 'restarting an unhealthy container');
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

  return {
    get state() {
      return state;
    },
    applied() {
      return Object.fromEntries(apps.map((a) => [a, runners.get(a)?.state.applied ?? null]));
    },
    heartbeat,
    async start() {
      if (state !== 'created') throw new Error(`worker cannot start when ${state}`);
      state = 'starting';
      jsm = await jetstreamManager(deps.nc);
      js = jetstream(deps.nc);
      // The API owns APPS and the notifier RESULTS and HOSTS: the worker only waits for them to exist.
      await waitForStreams(jsm, ['apps', 'results', 'hosts'], { retryMs: opts.retryBaseMs, onWaiting: (msg, fields) => log.warn(fields, msg) });
      for (const app of apps) runners.set(app, new AppRunner({ app, hostId, js, jsm, ctx, opts, log }));
      await Promise.all([...runners.values()].map(adopt));
      await removeUnserved();
      if (state !== 'starting') return; // stopped while adopting
      state = 'running';
      for (const r of runners.values()) r.start();
      every(opts.heartbeatIntervalMs, 'heartbeat', heartbeat);
      every(opts.healthCheckIntervalMs, 'health check', restartUnhealthy);
      await heartbeat().catch((err: unknown) => log.warn({ err }, 'first heartbeat failed'));
      log.info({ host: hostId, apps, cores: host.cores, memory_mb: host.memory_mb }, 'worker running');
    },
    async stop() {
      if (state === 'stopped' || state === 'draining') return;
      if (state === 'created') {
        state = 'stopped';
        return;
      }
      state = 'draining';
      for (const t of timers) clearInterval(t);
      await Promise.all([...runners.values()].map((r) => r.stop()));
      state = 'stopped';
      log.info('worker stopped; containers keep running');
    },
  };
}
