import type { CronRunReport, GroupCronJob } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import type { HostPolicy } from '../planner/host-policy.ts';
import type { ContainerRuntime } from '../runtime/container-runtime.ts';

/**
 * Runs the cron jobs of the device group a host follows, each at its schedule (see the module's
 * README section "Cron jobs"): one container per run named `<job>-<unix time>`, labelled ours with
 * `io.nebula.cron-job`, no restart policy; never two runs of one job at once on this host; a run
 * past the job's `timeout_seconds` stopped; finished run containers removed but the last few; each
 * run reported when it ends.
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

export function createCronScheduler(_deps: CronSchedulerDeps): CronScheduler {
  return {
    update() {},
    async stop() {},
  };
}
