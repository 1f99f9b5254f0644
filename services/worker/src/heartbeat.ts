import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import { MESSAGE_VERSION } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import type { AppState } from './app-runner.ts';
import type { HostContext } from './planner/plan-host.ts';
import type { RepairStats } from './reconciler.ts';
import { containerStates, publishHeartbeat } from './reporting.ts';
import type { ContainerRuntime } from './runtime/container-runtime.ts';
import type { UsageGatherer } from './usage.ts';

export interface HeartbeatDeps {
  hostId: string;
  hostKey: KeyPair;
  host: HostContext;
  runtime: ContainerRuntime;
  /** Known once the worker has started. */
  js: () => JetStreamClient;
  /** The apps served now. */
  served: () => readonly string[];
  /** The revision the app runs (null: none yet, or no runner). */
  applied: (app: string) => AppState['applied'];
  /** Drift repaired for the app since start (undefined: not tracked). */
  repairs: (app: string) => RepairStats | undefined;
  usage: Pick<UsageGatherer, 'latest'>;
  deviceGroup: string | undefined;
  opts: { version: string; heartbeatIntervalMs: number };
  log: Logger;
}

/**
 * Publishes one heartbeat: per served app the revision it runs, its containers' states and the drift
 * repaired; the host's size, the latest usage sample, and this process's nonce (`instance`: another
 * worker with the same host id shows as a second one). An engine that does not answer leaves the
 * container states out, never the heartbeat.
 */
export function createHeartbeat(deps: HeartbeatDeps): () => Promise<void> {
  const { hostId, host, runtime, opts, log, deviceGroup } = deps;
  const instance = randomUUID();
  return async function heartbeat(): Promise<void> {
    let observed: Awaited<ReturnType<ContainerRuntime['listContainers']>> = [];
    try {
      observed = await runtime.listContainers(hostId);
    } catch (err) {
      log.warn({ err }, 'heartbeat without container states: engine unreachable');
    }
    await publishHeartbeat(deps.js(), deps.hostKey, {
      v: MESSAGE_VERSION,
      host: hostId,
      apps: deps.served().map((app) => {
        const a = deps.applied(app);
        const stats = deps.repairs(app);
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
      ...(deps.usage.latest !== null ? { usage: deps.usage.latest } : {}),
      ...(deviceGroup !== undefined ? { device_group: deviceGroup } : {}),
      at: new Date().toISOString(),
    });
  };
}
