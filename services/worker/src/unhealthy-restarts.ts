import type { Logger } from '@nebula/service-kit';
import type { AppRunner } from './app-runner.ts';
import { nextRestartAllowedAt, type RestartRecord } from './planner/backoff.ts';
import { type ContainerRuntime, LABELS } from './runtime/container-runtime.ts';

export interface UnhealthyRestartsDeps {
  hostId: string;
  runtime: ContainerRuntime;
  /** The runner of a served app (undefined: not served). */
  runner: (app: string) => AppRunner | undefined;
  opts: { healthCheckIntervalMs: number; unhealthyRestartMaxBackoffMs: number; stopTimeoutSeconds: number };
  log: Logger;
}

/**
 * Docker marks a container unhealthy but never restarts it: we do (as the original did), at once
 * the first time, then ever less often while it stays unhealthy (nextRestartAllowedAt). Only the
 * running containers of served apps whose runner is idle; a container seen healthy, or gone, starts
 * over.
 */
export class UnhealthyRestarts {
  private readonly restarts = new Map<string, RestartRecord>();
  private readonly deps: UnhealthyRestartsDeps;

  constructor(deps: UnhealthyRestartsDeps) {
    this.deps = deps;
  }

  /** Restarts the unhealthy containers whose backoff has passed. */
  async check(): Promise<void> {
    const { hostId, runtime, opts, log } = this.deps;
    const restarts = this.restarts;
    const observed = await runtime.listContainers(hostId);
    const seen = new Set(observed.map((c) => c.id));
    for (const id of restarts.keys()) if (!seen.has(id)) restarts.delete(id);
    for (const c of observed) {
      if (c.health === 'healthy') restarts.delete(c.id);
      const app = c.labels[LABELS.app] ?? '';
      const runner = this.deps.runner(app);
      if (c.health !== 'unhealthy' || c.state !== 'running' || runner === undefined || runner.state.busy) continue;
      const record = restarts.get(c.id);
      const now = Date.now();
      if (now < nextRestartAllowedAt(record, opts.healthCheckIntervalMs, opts.unhealthyRestartMaxBackoffMs)) continue;
      log.warn({ app, container: c.name, restarts: record?.restarts ?? 0 }, 'restarting an unhealthy container');
      restarts.set(c.id, { restarts: (record?.restarts ?? 0) + 1, lastAt: now });
      await runtime.restart(c.id, opts.stopTimeoutSeconds);
    }
  }
}
