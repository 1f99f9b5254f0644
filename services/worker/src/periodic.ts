import type { Logger } from '@nebula/service-kit';

/**
 * The worker's timers (heartbeat, health check, reconcile, usage): each runs only while the worker
 * runs, never twice at once (a tick that comes while the previous run goes on is skipped), and
 * never keeps the process alive. A failure is logged as `<what> failed`.
 */
export class Periodic {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly deps: { active: () => boolean; log: Logger };

  constructor(deps: { active: () => boolean; log: Logger }) {
    this.deps = deps;
  }

  every(ms: number, what: string, fn: () => Promise<void>): void {
    let running = false;
    const t = setInterval(() => {
      if (running || !this.deps.active()) return;
      running = true;
      fn()
        .catch((err: unknown) => this.deps.log.warn({ err }, `${what} failed`))
        .finally(() => (running = false));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  clear(): void {
    for (const t of this.timers) clearInterval(t);
  }
}
