import { CRON_LOG_TAIL_MAX, type CronRunReport, type GroupCronJob, MESSAGE_VERSION } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import { type HostPolicy, policyViolations, refusalText } from '../planner/host-policy.ts';
import type { CallOptions, ContainerRuntime } from '../runtime/container-runtime.ts';
import { cronRunSpec, isGoing } from './run-spec.ts';
import { sleep, type Timers } from './timers.ts';

/**
 * One run of a cron job on this host:
 *
 *   policy ──refused──> report {error}
 *     │ allowed
 *   pull (stall timeout; a failed pull uses the local image if there is one) ──none──> report {error}
 *   create `<job>-<unix s>` ─> start ─> inspect every pollMs ─ exited ──────────────> logs ─> report {exit_code}
 *                                          │ past timeout_seconds: stop ─> inspect ─> logs ─> report {timed_out}
 *
 * Every engine call has a deadline (`callTimeoutMs`, a stop its grace on top) and ends when the
 * scheduler stops (`signal`); a run abandoned so reports nothing (null): its container is ours and
 * still counts as going for the next worker process, which stops it once past its timeout.
 */
export interface RunContext {
  runtime: ContainerRuntime;
  hostId: string;
  group: string;
  policy: HostPolicy;
  log: Logger;
  /** Wall clock: the run's name and the report's times. */
  now(): number;
  /** For the timeout: a wall clock set back or forward does not shorten or lengthen a run. */
  monotonic(): number;
  timers: Timers;
  callTimeoutMs: number;
  pollMs: number;
  stopTimeoutSeconds: number;
  /** The network the worker creates when a config names it (as for apps). */
  ownNetwork: string;
  /** The scheduler stopping. */
  signal: AbortSignal;
  /** Hears the run's container id as soon as it exists (the scheduler's cleanup leaves it alone). */
  onContainer(id: string): void;
}

const iso = (ms: number) => new Date(ms).toISOString();
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 4000);

export async function runCronJob(ctx: RunContext, job: GroupCronJob, startedAtMs: number): Promise<CronRunReport | null> {
  const { runtime, log } = ctx;
  const spec = cronRunSpec(job, ctx.hostId, startedAtMs);
  const call = (extraMs = 0): CallOptions => ({ signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.callTimeoutMs + extraMs)]), name: spec.name });
  const report = (r: Partial<Pick<CronRunReport, 'exit_code' | 'timed_out' | 'log_tail' | 'error'>>): CronRunReport => {
    const at = iso(ctx.now());
    return {
      v: MESSAGE_VERSION,
      job: job.name,
      cron_job_id: job.cron_job_id,
      host: ctx.hostId,
      device_group: ctx.group,
      container: spec.name,
      started_at: iso(startedAtMs),
      finished_at: at,
      exit_code: null,
      timed_out: false,
      log_tail: '',
      error: null,
      ...r,
      at,
    };
  };
  const violations = policyViolations(job.config, ctx.policy);
  if (violations.length > 0) return report({ error: refusalText(violations) });
  let id: string | null = null;
  try {
    try {
      await runtime.pull(spec.image, { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) return null;
      if ((await runtime.imageInfo(spec.image, call())) === null) return report({ error: `pull ${spec.image}: ${messageOf(err)}` });
      log.warn({ job: job.name, image: spec.image, err }, 'cron run: pull failed, using the local image');
    }
    if (spec.networks.includes(ctx.ownNetwork)) await runtime.ensureNetwork(ctx.ownNetwork, call());
    id = await runtime.create(spec, call());
    ctx.onContainer(id);
    await runtime.start(id, call());
    const deadline = ctx.monotonic() + job.config.timeout_seconds * 1000;
    let timedOut = false;
    let exitCode: number | null = null;
    for (;;) {
      const seen = await runtime.inspect(id, call()).catch((err: unknown) => {
        if (ctx.signal.aborted) throw err;
        log.warn({ job: job.name, container: spec.name, err }, 'cron run: inspect failed (trying again)');
        return undefined;
      });
      if (seen === null) return report({ error: `the run's container ${spec.name} disappeared` });
      if (seen !== undefined && !isGoing(seen)) {
        exitCode = seen.exitCode;
        break;
      }
      const left = deadline - ctx.monotonic();
      if (left <= 0) {
        timedOut = true;
        log.warn({ job: job.name, container: spec.name, timeout_seconds: job.config.timeout_seconds }, 'cron run past its timeout: stopping it');
        await runtime.stop(id, ctx.stopTimeoutSeconds, call(ctx.stopTimeoutSeconds * 1000));
        exitCode = (await runtime.inspect(id, call()))?.exitCode ?? null;
        break;
      }
      if (!(await sleep(ctx.timers, Math.min(ctx.pollMs, left), ctx.signal))) return null;
    }
    const tail = await runtime.logsTail(id, { ...call(), bytes: CRON_LOG_TAIL_MAX }).catch((err: unknown) => {
      log.warn({ job: job.name, container: spec.name, err }, 'cron run: could not read its log');
      return '';
    });
    return report({ exit_code: exitCode, timed_out: timedOut, log_tail: tail });
  } catch (err) {
    if (ctx.signal.aborted) return null;
    return report({ error: `${id === null ? 'could not create the run' : 'run'}: ${messageOf(err)}` });
  }
}
