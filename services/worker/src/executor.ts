import { forEachLimit } from './concurrency.ts';
import { abortedError, ContainerFailedError, EngineUnavailableError, WorkerError } from './errors.ts';
import type { AppPlan, Step } from './planner/plan-host.ts';
import { healthBudgetMs, judgeSettle } from './planner/settle.ts';
import { type ContainerRuntime, type ContainerSpec, LABELS, type ObservedContainer } from './runtime/container-runtime.ts';

/**
 * Applies one app's plan through the runtime.
 *
 *   all-at-once:    stop+set aside every replaced/removed container ─▶ create+start every new one
 *   one-at-a-time:  per index: stop+set aside old ─▶ create+start new ─▶ wait running (healthy) ─▶ next
 *                   then set aside what is beyond the count
 *   then:           watch the new ones for the settle time ─▶ settled: remove what was set aside
 *                   any failure (start refused, a roll step or the settle watch) ─▶ put back: the new
 *                   ones removed, the old ones renamed back and started (see Switchover)
 *
 * A plan that starts nothing (stop, delete, a count down) just removes. The gap a failed apply
 * leaves (the app serves nothing) is from stopping the old containers to starting them again:
 * stop, create, start, the first poll that sees the new one down, remove it, rename, start.
 *
 * A container that was created but failed to start is removed again, so a failure leaves no
 * half-made containers behind (that removal is not under the signal: an abort must not skip it).
 * `signal` aborts the apply between and within engine calls (a convergence past its deadline, or
 * replaced by a newer revision); the next convergence re-plans from what it observes.
 */
export interface ExecutorOptions {
  stopTimeoutSeconds: number;
  /** One-at-a-time without healthcheck: how long a new container must stay up. */
  rollSettleMs: number;
  /** One-at-a-time: how long a new container may take to run (and be healthy). */
  rollTimeoutMs: number;
  pollMs: number;
  /** The only network created when missing. */
  ownNetwork: string;
  /** All-at-once: containers created and started at the same time (MAX_PARALLEL_STARTS; default 8). */
  maxParallelStarts?: number;
  /**
   * How long the containers an apply started are watched before the apply counts as done
   * (WORKER_SETTLE_SECONDS; 0 or unset: not watched). One that exits, restarts or turns unhealthy
   * meanwhile fails the apply, and the previous containers are put back.
   */
  settleMs?: number;
}

export const DEFAULT_PARALLEL_STARTS = 8;

export interface ApplyOutcome {
  created: number;
  replaced: number;
  removed: number;
  kept: number;
}

/** Sleeps `ms`; rejects as soon as `signal` aborts, naming what was being waited for. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal, what));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortedError(signal as AbortSignal, what));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function stopAndRemove(runtime: ContainerRuntime, c: ObservedContainer, opts: ExecutorOptions, signal: AbortSignal | undefined): Promise<void> {
  const call = { signal, name: c.name };
  if (c.state === 'running' || c.state === 'restarting' || c.state === 'paused') await runtime.stop(c.id, opts.stopTimeoutSeconds, call);
  await runtime.remove(c.id, call);
}

async function createAndStart(runtime: ContainerRuntime, spec: ContainerSpec, signal: AbortSignal | undefined): Promise<string> {
  const id = await runtime.create(spec, { signal, name: spec.name });
  try {
    await runtime.start(id, { signal, name: spec.name });
  } catch (err) {
    await runtime.remove(id, { name: spec.name }).catch(() => undefined);
    throw err;
  }
  return id;
}

async function ensureNetworks(runtime: ContainerRuntime, specs: ContainerSpec[], opts: ExecutorOptions, signal: AbortSignal | undefined): Promise<void> {
  if (specs.some((s) => s.networks.includes(opts.ownNetwork))) await runtime.ensureNetwork(opts.ownNetwork, { signal });
}

/** Waits until a new container runs (and is healthy when it has a healthcheck) and stays up. */
async function waitUp(
  runtime: ContainerRuntime,
  id: string,
  spec: ContainerSpec,
  opts: ExecutorOptions,
  progress: () => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const hc = spec.healthcheck;
  const budget =
    hc === null
      ? opts.rollTimeoutMs
      : Math.max(opts.rollTimeoutMs, (hc.startPeriodSeconds + (hc.intervalSeconds + hc.timeoutSeconds) * (hc.retries + 1)) * 1000);
  const deadline = Date.now() + budget;
  let upSince: number | null = null;
  for (;;) {
    progress();
    const d = await runtime.inspect(id, { signal, name: spec.name });
    if (d === null) throw new ContainerFailedError(`${spec.name} disappeared while starting`);
    if (d.state === 'exited' || d.state === 'dead' || d.restarting || d.restartCount > 0) {
      throw new ContainerFailedError(
        `${spec.name} did not stay up (state ${d.state}${d.exitCode !== null ? `, exit code ${d.exitCode}` : ''}, restarts ${d.restartCount})`,
      );
    }
    if (d.health === 'unhealthy') throw new ContainerFailedError(`${spec.name} is unhealthy`);
    if (d.state === 'running') {
      if (hc !== null) {
        if (d.health === 'healthy') return;
      } else {
        upSince ??= Date.now();
        if (Date.now() - upSince >= opts.rollSettleMs) return;
      }
    }
    if (Date.now() > deadline) throw new ContainerFailedError(`${spec.name} was not ${hc ? 'healthy' : 'running'} after ${budget} ms (state ${d.state})`);
    await abortableSleep(opts.pollMs, signal, `waiting for ${spec.name} to ${hc ? 'be healthy' : 'run'}`);
  }
}

function count(steps: Step[]): ApplyOutcome {
  return {
    created: steps.filter((s) => s.kind === 'create').length,
    replaced: steps.filter((s) => s.kind === 'replace').length,
    removed: steps.filter((s) => s.kind === 'remove').length,
    kept: steps.filter((s) => s.kind === 'keep').length,
  };
}

export async function applyAppPlan(
  runtime: ContainerRuntime,
  plan: AppPlan,
  opts: ExecutorOptions,
  progress: () => void = () => undefined,
  signal?: AbortSignal,
): Promise<ApplyOutcome> {
  const removes = plan.steps.filter((s) => s.kind === 'remove');
  const news = plan.steps.filter((s) => s.kind === 'create' || s.kind === 'replace');
  await ensureNetworks(
    runtime,
    news.map((s) => s.spec),
    opts,
    signal,
  );
  if (news.length === 0) {
    // Nothing new to come up (stop, delete, a count down): the containers simply go.
    await settleAll(removes.map((s) => stopAndRemove(runtime, s.current, opts, signal)));
    progress();
    return count(plan.steps);
  }
  const switchover = new Switchover(runtime, opts, signal);
  try {
    if (plan.strategy === 'all-at-once') {
      const old = [...news.filter((s) => s.kind === 'replace').map((s) => s.current), ...removes.map((s) => s.current)];
      await settleAll(old.map((c) => switchover.setAside(c)));
      progress();
      await forEachLimit(news, opts.maxParallelStarts ?? DEFAULT_PARALLEL_STARTS, (s) => switchover.createAndStart(s.spec));
      progress();
    } else {
      // A container of ours that goes and holds a name about to be reused goes first.
      const names = new Set(news.map((s) => s.spec.name));
      const early = removes.filter((s) => names.has(s.current.name));
      await settleAll(early.map((s) => switchover.setAside(s.current)));
      for (const step of [...news].sort((a, b) => a.index - b.index)) {
        if (step.kind === 'replace') await switchover.setAside(step.current);
        progress();
        const id = await switchover.createAndStart(step.spec);
        await waitUp(runtime, id, step.spec, opts, progress, signal);
      }
      await settleAll(removes.filter((s) => !early.includes(s)).map((s) => switchover.setAside(s.current)));
    }
    await watchSettle(runtime, switchover.made, opts, progress, signal);
  } catch (err) {
    // Aborted (past the deadline, or a newer revision waits), or an engine that does not answer
    // (it would not answer the put back either): the next convergence re-plans from what it finds
    // (what was set aside is then removed as unrecognised). Any other failure: put back.
    if (signal?.aborted || err instanceof EngineUnavailableError) throw err;
    throw await switchover.putBack(err);
  }
  await switchover.commit();
  return count(plan.steps);
}

/** The name a replaced container waits under while its successor settles. */
export function asideName(c: Pick<ObservedContainer, 'name' | 'id'>): string {
  return `${c.name}.prev-${c.id.slice(0, 12)}`;
}

/** A container left set aside by an earlier life of the worker (it died mid-switch): only removed. */
export function isSetAside(name: string): boolean {
  return /\.prev-[A-Za-z0-9]+$/.test(name);
}

/**
 * One apply's switch from the previous containers to the new ones, undoable until it is committed:
 *
 *   setAside: stop the old one (its ports are free), rename it `<name>.prev-<id>`
 *   createAndStart: the new one under the old name
 *   commit (all settled): remove what was set aside
 *   putBack (failed): remove every new one, rename the old ones back, start those that ran
 *
 * Put back under no signal (each call has the runtime's own deadline): an abort must not leave the
 * app half switched. What cannot be put back is said in the error, and the next convergence re-plans.
 */
class Switchover {
  readonly made: Array<{ id: string; spec: ContainerSpec; startedAt: number }> = [];
  private readonly aside: Array<{ current: ObservedContainer; wasRunning: boolean }> = [];
  private readonly runtime: ContainerRuntime;
  private readonly opts: ExecutorOptions;
  private readonly signal: AbortSignal | undefined;
  constructor(runtime: ContainerRuntime, opts: ExecutorOptions, signal: AbortSignal | undefined) {
    this.runtime = runtime;
    this.opts = opts;
    this.signal = signal;
  }

  async setAside(c: ObservedContainer): Promise<void> {
    if (isSetAside(c.name)) return stopAndRemove(this.runtime, c, this.opts, this.signal);
    const call = { signal: this.signal, name: c.name };
    const wasRunning = c.state === 'running' || c.state === 'restarting' || c.state === 'paused';
    if (wasRunning) await this.runtime.stop(c.id, this.opts.stopTimeoutSeconds, call);
    await this.runtime.rename(c.id, asideName(c), call);
    this.aside.push({ current: c, wasRunning });
  }

  async createAndStart(spec: ContainerSpec): Promise<string> {
    const id = await createAndStart(this.runtime, spec, this.signal);
    this.made.push({ id, spec, startedAt: Date.now() });
    return id;
  }

  async commit(): Promise<void> {
    await settleAll(this.aside.map(({ current }) => this.runtime.remove(current.id, { signal: this.signal, name: asideName(current) })));
  }

  /** Puts the previous containers back; returns the error to throw, saying what was done. */
  async putBack(err: unknown): Promise<unknown> {
    const problems: string[] = [];
    const tryTo = (p: Promise<unknown>) => p.catch((e: unknown) => problems.push(e instanceof Error ? e.message : String(e)));
    await Promise.all(this.made.map(({ id, spec }) => tryTo(this.runtime.remove(id, { name: spec.name }))));
    await Promise.all(
      this.aside.map(async ({ current, wasRunning }) => {
        await tryTo(this.runtime.rename(current.id, current.name, { name: asideName(current) }));
        if (wasRunning) await tryTo(this.runtime.start(current.id, { name: current.name }));
      }),
    );
    const revisions = [...new Set(this.aside.map((a) => a.current.labels[LABELS.revision] ?? '?'))].sort();
    const what =
      this.aside.length === 0
        ? 'no previous containers: the new ones removed'
        : `previous revision ${revisions.join(', ')} ${problems.length === 0 ? 'put back' : `not fully put back (${problems[0]})`}`;
    if (err instanceof WorkerError) {
      // Same class (retryable or not), the cause kept: only the text says what was undone.
      err.message = `${err.message}: ${what}`;
      return err;
    }
    return new ContainerFailedError(`${err instanceof Error ? err.message : String(err)}: ${what}`, { cause: err });
  }
}

/**
 * Watches the containers an apply started until they settle (judgeSettle): the first that exits,
 * restarts or turns unhealthy fails the apply at once. Off when `settleMs` is 0.
 */
async function watchSettle(
  runtime: ContainerRuntime,
  made: ReadonlyArray<{ id: string; spec: ContainerSpec; startedAt: number }>,
  opts: ExecutorOptions,
  progress: () => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const settleMs = opts.settleMs ?? 0;
  if (settleMs <= 0 || made.length === 0) return;
  const since = Math.max(...made.map((m) => m.startedAt));
  for (;;) {
    progress();
    const observations = await Promise.all(
      made.map(async ({ id, spec }) => ({
        name: spec.name,
        details: await runtime.inspect(id, { signal, name: spec.name }),
        healthBudgetMs: spec.healthcheck === null ? null : healthBudgetMs(spec.healthcheck),
      })),
    );
    const verdict = judgeSettle(observations, Date.now() - since, settleMs);
    if (verdict.kind === 'settled') return;
    if (verdict.kind === 'failed') throw new ContainerFailedError(verdict.reason);
    await abortableSleep(opts.pollMs, signal, 'watching the new containers settle');
  }
}

/** Like Promise.all, but lets every operation finish before throwing the first error. */
async function settleAll(ps: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(ps);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
