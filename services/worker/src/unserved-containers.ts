import type { Logger } from '@nebula/service-kit';
import { WorkerError } from './errors.ts';
import { applyAppPlan, type ExecutorOptions } from './executor.ts';
import { type HostContext, planHost, unservedApps } from './planner/plan-host.ts';
import { type ContainerRuntime, LABELS } from './runtime/container-runtime.ts';

/** A worker with no app to serve found containers of ours at start and was not told to remove them. */
export class UnservedContainersError extends WorkerError {
  override name = 'UnservedContainersError';
  readonly retryable = false;
}

export interface UnservedContainersDeps {
  hostId: string;
  host: HostContext;
  runtime: ContainerRuntime;
  /** The apps served now. */
  served: () => readonly string[];
  opts: ExecutorOptions & { removeUnserved: boolean };
  log: Logger;
}

/**
 * Our containers of apps this host does not serve: removed (at start, and when a device group drops
 * an app), except that an empty app list is taken for a mistake, not for an order to empty the host.
 */
export interface UnservedContainers {
  /**
   * A worker started with an empty APP_NAME (a typo, a lost variable) would otherwise wipe its host:
   * with no app served, containers of ours are a reason to refuse to start, unless told.
   */
  refuseEmptyAppList(): Promise<void>;
  /** Removes our containers of every app not in `keep` (by default: the apps served); failures are logged. */
  remove(keep?: readonly string[]): Promise<void>;
}

export function unservedContainers(deps: UnservedContainersDeps): UnservedContainers {
  const { hostId, host, runtime, opts, log } = deps;
  return {
    async refuseEmptyAppList() {
      const served = deps.served();
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
    },
    async remove(keep = deps.served()) {
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
    },
  };
}
