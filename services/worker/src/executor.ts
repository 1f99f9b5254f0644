import { forEachLimit } from './concurrency.ts';
import { abortedError, ContainerFailedError } from './errors.ts';
import type { AppPlan, Step } from './planner/plan-host.ts';
import type { ContainerRuntime, ContainerSpec, ObservedContainer } from './runtime/container-runtime.ts';

/**
 * Applies one app's plan through the runtime.
 *
 *   all-at-once:    stop+remove every replaced/removed container ─▶ create+start every new one
 *   one-at-a-time:  per index: stop+remove old ─▶ create+start new ─▶ wait running (healthy) ─▶ next
 *                   (a new container that does not come up stops the roll: the rest keep serving)
 *                   then remove what is beyond the count
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

  if (plan.strategy === 'all-at-once') {
    const old = [...news.filter((s) => s.kind === 'replace').map((s) => s.current), ...removes.map((s) => s.current)];
    await settleAll(old.map((c) => stopAndRemove(runtime, c, opts, signal)));
    progress();
    await forEachLimit(news, opts.maxParallelStarts ?? DEFAULT_PARALLEL_STARTS, (s) => createAndStart(runtime, s.spec, signal));
    progress();
    return count(plan.steps);
  }

  // A container of ours that goes and holds a name about to be reused goes first.
  const names = new Set(news.map((s) => s.spec.name));
  const early = removes.filter((s) => names.has(s.current.name));
  await settleAll(early.map((s) => stopAndRemove(runtime, s.current, opts, signal)));
  for (const step of [...news].sort((a, b) => a.index - b.index)) {
    if (step.kind === 'replace') await stopAndRemove(runtime, step.current, opts, signal);
    progress();
    const id = await createAndStart(runtime, step.spec, signal);
    await waitUp(runtime, id, step.spec, opts, progress, signal);
  }
  await settleAll(removes.filter((s) => !early.includes(s)).map((s) => stopAndRemove(runtime, s.current, opts, signal)));
  return count(plan.steps);
}

/** Like Promise.all, but lets every operation finish before throwing the first error. */
async function settleAll(ps: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(ps);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
