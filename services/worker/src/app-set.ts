import { byCodeUnit } from './text-order.ts';

/**
 * The apps a host serves: those of APP_NAME (fixed at start) and those its device group names now.
 * A group message moves the set from what is served to the new union; APP_NAME's apps are never
 * removed, whatever the group says (an app in both stays when the group drops it). Pure: what to
 * start and what to stop is decided here, property-tested (app-set.test.ts), and done by the worker.
 */
export interface AppSetChange {
  /** The apps served after the change, sorted, each once. */
  next: string[];
  /** Served after, not before: a runner to start (after a renewal grants its consumer). */
  added: string[];
  /** Served before, not after: its runner stopped and its containers removed. Never one of `fixed`. */
  removed: string[];
}

export function appSetChange(input: { fixed: readonly string[]; served: readonly string[]; group: readonly string[] }): AppSetChange {
  const next = [...new Set([...input.fixed, ...input.group])].sort(byCodeUnit);
  const before = new Set(input.served);
  const after = new Set(next);
  return {
    next,
    added: next.filter((a) => !before.has(a)),
    removed: [...before].filter((a) => !after.has(a)).sort(byCodeUnit),
  };
}

/** True when the change starts or stops something. */
export function changesApps(c: AppSetChange): boolean {
  return c.added.length > 0 || c.removed.length > 0;
}
