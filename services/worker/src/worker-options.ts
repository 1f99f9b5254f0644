// Imported, not read at run time: the release bundle (tools/src/release) carries it inline.
import workerPackage from '../package.json' with { type: 'json' };
import type { RunnerOptions } from './app-runner.ts';
import type { ExecutorOptions } from './executor.ts';
import { DEFAULT_HOST_POLICY, type HostPolicy } from './planner/host-policy.ts';

/** What a worker is told (main.ts reads them from the environment); every one has a default. */
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
