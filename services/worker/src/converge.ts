import type { AppMessage, ContainerState } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import { HostPolicyError, isRetryable } from './errors.ts';
import { type ApplyOutcome, applyAppPlan, type ExecutorOptions } from './executor.ts';
import { type HostPolicy, policyViolations, type Violation } from './planner/host-policy.ts';
import { actionPulls, desiredFromMessage, type HostContext, isEmptyPlan, planHost } from './planner/plan-host.ts';
import { containerStates } from './reporting.ts';
import type { ContainerRuntime } from './runtime/container-runtime.ts';

export interface ConvergeContext {
  runtime: ContainerRuntime;
  host: HostContext;
  exec: ExecutorOptions;
  log: Logger;
  /** What this host lets a revision do (see planner/host-policy.ts). */
  policy: HostPolicy;
  /** Called with the violations of each revision refused by the policy (the worker counts them). */
  onRefused?: (app: string, violations: readonly Violation[]) => void;
}

export interface ConvergeOutcome {
  imageDigest: string | null;
  pullMs: number;
  applyMs: number;
  outcome: ApplyOutcome;
  containers: ContainerState[];
}

/** Whether the message makes containers run: a delete, a stop or a stopped config only removes or stops them. */
function runsContainers(m: AppMessage): boolean {
  return m.action !== 'delete' && m.action !== 'stop' && m.config.running;
}

/**
 * The refusal of a revision by the host's policy, or null. Only a revision that runs containers is
 * checked: stopping or deleting an app is always allowed, whatever its config.
 */
export function policyRefusal(policy: HostPolicy, m: AppMessage): HostPolicyError | null {
  if (!runsContainers(m)) return null;
  const violations = policyViolations(m.config, policy);
  return violations.length === 0 ? null : new HostPolicyError(violations);
}

/**
 * Brings one app on this host to what a message asks: pull (when the action pulls, or the image
 * is missing), observe, plan, apply; nothing of it when the host's policy refuses the revision
 * (a HostPolicyError, permanent). `adopt` is the start-up mode: keep what matches, no re-pull.
 */
export async function convergeApp(
  ctx: ConvergeContext,
  m: AppMessage,
  opts: { adopt?: boolean; progress?: () => void; signal?: AbortSignal } = {},
): Promise<ConvergeOutcome> {
  const { runtime, log } = ctx;
  const progress = opts.progress ?? (() => undefined);
  const signal = opts.signal;
  const call = { signal };
  const image = m.config.docker_image;
  const needsImage = runsContainers(m);
  // Before any pull or container change: a refused revision leaves the app's containers as they are.
  const refused = policyRefusal(ctx.policy, m);
  if (refused !== null) {
    ctx.onRefused?.(m.app, refused.violations);
    throw refused;
  }
  let pullMs = 0;
  let imageId: string | null = null;
  let imageDigest: string | null = null;
  if (needsImage) {
    const t0 = performance.now();
    const forcePull = opts.adopt !== true && actionPulls(m.action);
    if (forcePull || (await runtime.imageInfo(image, call)) === null) {
      try {
        await runtime.pull(image, { signal, onProgress: progress });
      } catch (err) {
        // A tag that cannot be re-pulled but is present locally still serves, except for `pull`,
        // whose whole point is the registry's current content (and an aborted convergence stops).
        if (signal?.aborted) throw err;
        const local = m.action === 'pull' ? null : await runtime.imageInfo(image, call);
        if (local === null) throw err;
        log.warn({ app: m.app, image, err, retryable: isRetryable(err) }, 'pull failed: using the local image');
      }
    }
    pullMs = performance.now() - t0;
    progress();
    const info = await runtime.imageInfo(image, call);
    imageId = info?.id ?? null;
    imageDigest = info?.digest ?? info?.id ?? null;
  }
  const t1 = performance.now();
  const want = desiredFromMessage(m, { imageId, adopt: opts.adopt === true });
  const plan = planHost([want], await runtime.listContainers(ctx.host.hostId, call), ctx.host);
  const appPlan = plan.apps[0];
  let outcome: ApplyOutcome = { created: 0, replaced: 0, removed: 0, kept: 0 };
  if (appPlan !== undefined) {
    if (!isEmptyPlan(appPlan)) {
      log.info(
        {
          app: m.app,
          revision: m.revision,
          action: m.action,
          strategy: appPlan.strategy,
          steps: appPlan.steps.filter((s) => s.kind !== 'keep').map((s) => `${s.kind} ${'spec' in s ? s.spec.name : s.current.name}: ${s.reason}`),
        },
        'applying plan',
      );
    }
    // Adopting (start-up, drift repair, a wave's base) converges to a revision already applied or
    // judged good: nothing earlier to put back, so no settle watch (see executor.ts).
    const exec = opts.adopt === true ? { ...ctx.exec, settleMs: 0 } : ctx.exec;
    outcome = await applyAppPlan(runtime, appPlan, exec, progress, signal);
  }
  const containers = containerStates(await runtime.listContainers(ctx.host.hostId, call), m.app);
  return { imageDigest, pullMs, applyMs: performance.now() - t1, outcome, containers };
}
