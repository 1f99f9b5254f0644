import { type CronRunReport, type CronSchedule, type GroupCronJob, MESSAGE_VERSION, parseCronSchedule } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import type { HostPolicy } from '../planner/host-policy.ts';
import type { ContainerRuntime } from '../runtime/container-runtime.ts';
import { runsToRemove } from './run-cleanup.ts';
import { runCronJob } from './run-job.ts';
import { isGoing, runContainerName, runJobOf, runStartedSeconds } from './run-spec.ts';
import { decideWake, nextDue, timerDelay } from './schedule-decision.ts';
import { REAL_TIMERS, type Timers } from './timers.ts';

/**
 * Runs the cron jobs of the device group a host follows, each at its schedule (see the worker's
 * README, "Cron jobs on hosts"): one container per run named `<job>-<unix time>`, labelled ours with
 * `io.nebula.cron-job`, no restart policy; never two runs of one job at once on this host; a run
 * past the job's `timeout_seconds` stopped; finished run containers removed but the last few; each
 * run reported when it ends.
 *
 *   update(g, jobs) ──> a slot per running job: one timer (schedule-decision.ts)
 *   timer fires ──> due? ──> previous run going (this process, or a container left by an earlier
 *                   one)? skip, logged ──> else runCronJob (run-job.ts) ──> report ──> cleanup
 *   stop() ──> timers cleared, runs in flight told to stop waiting (their containers go on)
 */
export interface CronSchedulerDeps {
  hostId: string;
  runtime: ContainerRuntime;
  log: Logger;
  hostPolicy: HostPolicy;
  /** Publishes one run's report (on `events.<host>.cron.<job>`); a failure is logged, never thrown into the schedule. */
  report(run: CronRunReport): Promise<void>;
  /** Default Date.now. */
  now?: () => number;
  /** For run timeouts; default performance.now. */
  monotonic?: () => number;
  /** Default the real ones. */
  timers?: Timers;
  /** The deadline of each engine call; default 30 s. */
  callTimeoutMs?: number;
  /** How often a run's container is inspected; default 1 s. */
  pollMs?: number;
  /** SIGTERM to SIGKILL when a run is stopped at its timeout; default 10 s. */
  stopTimeoutSeconds?: number;
  /** How long `stop()` waits for runs in flight to let go; default 2 s. */
  stopWaitMs?: number;
  /** The worker's own network, created when a job names it; default `nebula`. */
  ownNetwork?: string;
  /** Hears each due run skipped because the previous one is still going (the worker counts them). */
  onSkipped?: (job: string) => void;
}

export interface CronScheduler {
  /**
   * The jobs this host runs from now on: all of the group's (with every group message). A job no
   * longer listed, or with `running: false`, is not started again (a run in flight finishes); a job
   * whose `cron_job_id` changed is rescheduled from now.
   */
  update(group: string, jobs: readonly GroupCronJob[]): void;
  /** Stops scheduling; runs in flight are left to finish (their containers are ours and cleaned up later). */
  stop(): Promise<void>;
}

interface Slot {
  job: GroupCronJob;
  group: string;
  schedule: CronSchedule;
  due: number | null;
  lastRun: number | null;
  timer: unknown;
}

interface InFlight {
  /** Null until the run's container exists. */
  containerId: string | null;
  done: Promise<void>;
}

export function createCronScheduler(deps: CronSchedulerDeps): CronScheduler {
  const { runtime, log, hostId } = deps;
  const now = deps.now ?? Date.now;
  const monotonic = deps.monotonic ?? (() => performance.now());
  const timers = deps.timers ?? REAL_TIMERS;
  const callTimeoutMs = deps.callTimeoutMs ?? 30_000;
  const stopTimeoutSeconds = deps.stopTimeoutSeconds ?? 10;
  const stopping = new AbortController();
  const slots = new Map<string, Slot>();
  /** By job name: at most one per job, the no-overlap rule within this process. */
  const inFlight = new Map<string, InFlight>();
  const listed = new Map<string, Set<string>>();
  let cleaning: Promise<void> = Promise.resolve();
  const call = () => ({ signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(callTimeoutMs)]) });

  const clear = (slot: Slot) => {
    if (slot.timer !== null) timers.clearTimeout(slot.timer);
    slot.timer = null;
  };

  const arm = (slot: Slot) => {
    clear(slot);
    if (slot.due === null) {
      log.warn({ job: slot.job.name, schedule: slot.job.config.schedule }, 'cron job has no further run time');
      return;
    }
    slot.timer = timers.setTimeout(() => wake(slot), timerDelay(slot.due, now()));
  };

  const wake = (slot: Slot) => {
    slot.timer = null;
    if (stopping.signal.aborted || slots.get(slot.job.name) !== slot || slot.due === null) return;
    const d = decideWake({ due: slot.due, lastRun: slot.lastRun }, now(), (after) => nextDue(slot.schedule, slot.job.config.timezone, after));
    slot.due = d.due;
    slot.lastRun = d.lastRun;
    if (d.fire) startRun(slot.job, slot.group);
    arm(slot);
  };

  const skipped = (job: string, why: string, extra: Record<string, unknown> = {}) => {
    log.warn({ job, ...extra }, `cron run skipped: ${why}`);
    deps.onSkipped?.(job);
  };

  const startRun = (job: GroupCronJob, group: string) => {
    if (inFlight.has(job.name)) return skipped(job.name, 'the previous run on this host is still going');
    const startedAt = now();
    const entry: InFlight = { containerId: null, done: Promise.resolve() };
    // Reserved before the first await: a timer firing meanwhile finds the job going.
    inFlight.set(job.name, entry);
    entry.done = (async () => {
      try {
        if (await leftoverGoing(job, group)) return;
        const result = await runCronJob(
          {
            runtime,
            hostId,
            group,
            policy: deps.hostPolicy,
            log,
            now,
            monotonic,
            timers,
            callTimeoutMs,
            pollMs: deps.pollMs ?? 1000,
            stopTimeoutSeconds,
            ownNetwork: deps.ownNetwork ?? 'nebula',
            signal: stopping.signal,
            onContainer: (id) => {
              entry.containerId = id;
            },
          },
          job,
          startedAt,
        );
        if (result === null) return;
        log.info(
          { job: job.name, container: result.container, exit_code: result.exit_code, timed_out: result.timed_out, error: result.error },
          'cron run ended',
        );
        await deps.report(result).catch((err: unknown) => log.warn({ job: job.name, err }, 'could not report a cron run'));
      } catch (err) {
        if (!stopping.signal.aborted) log.error({ job: job.name, err }, 'cron run failed');
      } finally {
        inFlight.delete(job.name);
        cleanup();
      }
    })();
  };

  /**
   * A run left going by an earlier worker process (found by label): this run is skipped. One past
   * its job's timeout is stopped (its process never reported it), so the next due run goes ahead.
   * An engine that cannot list: the run is reported as not run (overlap cannot be ruled out).
   */
  const leftoverGoing = async (job: GroupCronJob, group: string): Promise<boolean> => {
    let going: string[];
    try {
      const mine = new Set([...inFlight.values()].map((f) => f.containerId));
      const list = await runtime.listContainers(hostId, call());
      const old = list.filter((c) => runJobOf(c) === job.name && isGoing(c) && !mine.has(c.id));
      going = old.map((c) => c.name);
      for (const c of old) {
        if ((runStartedSeconds(c) + job.config.timeout_seconds) * 1000 > now()) continue;
        log.warn({ job: job.name, container: c.name }, 'a run left by an earlier worker is past its timeout: stopping it');
        await runtime.stop(c.id, stopTimeoutSeconds, {
          signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(callTimeoutMs + stopTimeoutSeconds * 1000)]),
        });
      }
    } catch (err) {
      if (stopping.signal.aborted) return true;
      const at = new Date(now()).toISOString();
      await deps
        .report({
          v: MESSAGE_VERSION,
          job: job.name,
          cron_job_id: job.cron_job_id,
          host: hostId,
          device_group: group,
          container: runContainerName(job.name, Date.parse(at)),
          started_at: at,
          finished_at: at,
          exit_code: null,
          timed_out: false,
          log_tail: '',
          error: `could not list this host's containers: ${err instanceof Error ? err.message : String(err)}`.slice(0, 4000),
          at,
        })
        .catch((e: unknown) => log.warn({ job: job.name, err: e }, 'could not report a cron run'));
      return true;
    }
    if (going.length > 0) skipped(job.name, 'a run started by an earlier worker process is still going', { containers: going });
    return going.length > 0;
  };

  /** Serialised: one pass at a time, each after the previous one. */
  const cleanup = () => {
    if (stopping.signal.aborted) return;
    cleaning = cleaning.then(async () => {
      try {
        const pendingJobs = new Set([...inFlight].filter(([, f]) => f.containerId === null).map(([job]) => job));
        const ids = new Set([...inFlight.values()].map((f) => f.containerId).filter((id): id is string => id !== null));
        const all = new Set([...listed.values()].flatMap((s) => [...s]));
        const list = (await runtime.listContainers(hostId, call())).filter((c) => !pendingJobs.has(runJobOf(c) ?? ''));
        for (const c of runsToRemove(list, all, ids)) {
          await runtime.remove(c.id, { ...call(), name: c.name });
          log.debug({ job: runJobOf(c), container: c.name }, 'removed a finished cron run');
        }
      } catch (err) {
        if (!stopping.signal.aborted) log.warn({ err }, 'cron run cleanup failed (tried again after the next run)');
      }
    });
  };

  return {
    update(group, jobs) {
      if (stopping.signal.aborted) return;
      listed.set(group, new Set(jobs.map((j) => j.name)));
      const wanted = new Map(jobs.filter((j) => j.config.running).map((j) => [j.name, j]));
      for (const [name, slot] of slots) {
        if (slot.group !== group || wanted.has(name)) continue;
        clear(slot);
        slots.delete(name);
        log.info({ job: name, group }, 'cron job no longer scheduled on this host');
      }
      for (const job of wanted.values()) {
        const current = slots.get(job.name);
        if (current !== undefined && current.job.cron_job_id === job.cron_job_id && current.group === group) continue;
        if (current !== undefined) clear(current);
        let schedule: CronSchedule;
        try {
          schedule = parseCronSchedule(job.config.schedule);
        } catch (err) {
          slots.delete(job.name);
          log.error({ job: job.name, schedule: job.config.schedule, err }, 'cron job schedule not understood: not scheduled');
          continue;
        }
        const slot: Slot = { job, group, schedule, due: nextDue(schedule, job.config.timezone, now()), lastRun: null, timer: null };
        slots.set(job.name, slot);
        log.info(
          { job: job.name, group, cron_job_id: job.cron_job_id, next: slot.due === null ? null : new Date(slot.due).toISOString() },
          'cron job scheduled',
        );
        arm(slot);
      }
      cleanup();
    },

    async stop() {
      if (stopping.signal.aborted) return;
      for (const slot of slots.values()) clear(slot);
      slots.clear();
      stopping.abort();
      let timer: unknown = null;
      const waited = new Promise<void>((resolve) => {
        timer = timers.setTimeout(resolve, deps.stopWaitMs ?? 2000);
      });
      await Promise.race([Promise.allSettled([...[...inFlight.values()].map((f) => f.done), cleaning]), waited]);
      timers.clearTimeout(timer);
    },
  };
}
