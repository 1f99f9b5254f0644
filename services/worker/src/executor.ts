import { forEachLimit } from './concurrency.ts';
import { ContainerFailedError } from './errors.ts';
import type { ContainerRuntime, ContainerSpec, ObservedContainer } from './runtime/container-runtime.ts';
import type { AppPlan, Step } from './planner/plan-host.ts';

/**
 * Applies one app's plan through the runtime.
 *
 *   all-at-once:    stop+remove every replaced/removed container ─▶ create+start every new one
 *   one-at-a-time:  per index: stop+remove old ─▶ create+start new ─▶ wait running (healthy) ─▶ next
 *                   (a new container that does not come up stops the roll: the rest keep serving)
 *                   then remove what is beyond the count
 *
 * A container that was created but failed to start is removed again, so a failure leaves no
 * half-made containers behind.
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stopAndRemove(runtime: ContainerRuntime, c: ObservedContainer, opts: ExecutorOptions): Promise<void> {
  if (c.state === 'running' || c.state === 'restarting' || c.state === 'paused') await runtime.stop(c.id, opts.stopTimeoutSeconds);
  await runtime.remove(c.id);
}

async function createAndStart(runtime: ContainerRuntime, spec: ContainerSpec): Promise<string> {
  const id = await runtime.create(spec);
  try {
    await runtime.start(id);
  } catch (err) {
    await runtime.remove(id).catch(() => undefined);
    throw err;
  }
  return id;
}

async function ensureNetworks(runtime: ContainerRuntime, specs: ContainerSpec[], opts: ExecutorOptions): Promise<void> {
  if (specs.some((s) => s.networks.includes(opts.ownNetwork))) await runtime.ensureNetwork(opts.ownNetwork);
}

/** Waits until a new container runs (and is healthy when it has a healthcheck) and stays up. */
async function waitUp(runtime: ContainerRuntime, id: string, spec: ContainerSpec, opts: ExecutorOptions, progress: () => void): Promise<void> {
  const hc = spec.healthcheck;
  const budget = hc === null ? opts.rollTimeoutMs : Math.max(opts.rollTimeoutMs, (hc.startPeriodSeconds + (hc.intervalSeconds + hc.timeoutSeconds) * (hc.retries + 1)) * 1000);
  const deadline = Date.now() + budget;
  let upSince: number | null = null;
  for (;;) {
    progress();
    const d = await runtime.inspect(id);
    if (d === null) throw new ContainerFailedError(`${spec.name} disappeared while starting`);
    if (d.state === 'exited' || d.state === 'dead' || d.restarting || d.restartCount > 0) {
      throw new ContainerFailedError(`${spec.name} did not stay up (state ${d.state}${d.exitCode !== null ? `, exit code ${d.exitCode}` : ''}, restarts ${d.restartCount})`);
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
    await sleep(opts.pollMs);
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

export async function applyAppPlan(runtime: ContainerRuntime, plan: AppPlan, opts: ExecutorOptions, progress: () => void = () => undefined): Promise<ApplyOutcome> {
  const removes = plan.steps.filter((s) => s.kind === 'remove');
  const news = plan.steps.filter((s) => s.kind === 'create' || s.kind === 'replace');
  await ensureNetworks(runtime, news.map((s) => s.spec), opts);

  if (plan.strategy === 'all-at-once') {
    const old = [...news.filter((s) => s.kind === 'replace').map((s) => s.current), ...removes.map((s) => s.current)];
    await settleAll(old.map((c) => stopAndRemove(runtime, c, opts)));
    progress();
    await forEachLimit(news, opts.maxParallelStarts ?? DEFAULT_PARALLEL_STARTS, (s) => createAndStart(runtime, s.spec));
    progress();
    return count(plan.steps);
  }

  // A container of ours that goes and holds a name about to be reused goes first.
  const names = new Set(news.map((s) => s.spec.name));
  const early = removes.filter((s) => names.has(s.current.name));
  await settleAll(early.map((s) => stopAndRemove(runtime, s.current, opts)));
  for (const step of [...news].sort((a, b) => a.index - b.index)) {
    if (step.kind === 'replace') await stopAndRemove(runtime, step.current, opts);
    progress();
    const id = await createAndStart(runtime, step.spec);
    await waitUp(runtime, id, step.spec, opts, progress);
  }
  await settleAll(removes.filter((s) => !early.includes(s)).map((s) => stopAndRemove(runtime, s.current, opts)));
  return count(plan.steps);
}

/** Like Promise.all, but lets every operation finish before throwing the first error. */
async function settleAll(ps: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(ps);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
