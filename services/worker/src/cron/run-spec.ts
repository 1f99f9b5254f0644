import { envMap, type GroupCronJob } from '@nebula/contracts';
import { type ContainerSpec, LABELS, type ObservedContainer, OWNER } from '../runtime/container-runtime.ts';

/**
 * The container of one cron run, pure. Named `<job>-<unix seconds>` (the original's naming), with
 * owner, host, `io.nebula.cron-job` and `io.nebula.cron-job-id` labels and no `io.nebula.app`: the
 * app planner owns only containers with an app label, so it never touches a run. No restart policy:
 * a run ends when its process does.
 */

/** A run's log is kept small: the report carries only its end, and three finished runs are kept per job. */
export const RUN_LOG = { maxSizeMb: 10, maxFiles: 1 } as const;

export function runContainerName(job: string, startedAtMs: number): string {
  return `${job}-${Math.floor(startedAtMs / 1000)}`;
}

export function cronRunSpec(job: GroupCronJob, hostId: string, startedAtMs: number): ContainerSpec {
  const c = job.config;
  return {
    name: runContainerName(job.name, startedAtMs),
    image: c.docker_image,
    env: { ...envMap(c.env_vars) },
    ports: [],
    volumes: [...c.volumes],
    devices: [...c.devices],
    privileged: c.privileged,
    networks: [...c.networks],
    command: null,
    entrypoint: null,
    labels: {
      [LABELS.owner]: OWNER,
      [LABELS.host]: hostId,
      [LABELS.cronJob]: job.name,
      [LABELS.cronJobId]: String(job.cron_job_id),
    },
    memoryLimitMb: null,
    cpuLimit: null,
    healthcheck: null,
    log: { ...RUN_LOG },
    restartPolicy: 'no',
  };
}

/** The job a container is a run of, or null for any other container (an app's, or not a run). */
export function runJobOf(c: Pick<ObservedContainer, 'labels'>): string | null {
  const job = c.labels[LABELS.cronJob];
  return job !== undefined && c.labels[LABELS.app] === undefined && c.labels[LABELS.owner] === OWNER ? job : null;
}

/** The unix seconds in a run container's name (`<job>-<seconds>`), or 0 when it has none. */
export function runStartedSeconds(c: Pick<ObservedContainer, 'name' | 'labels'>): number {
  const job = runJobOf(c);
  const rest = job !== null && c.name.startsWith(`${job}-`) ? c.name.slice(job.length + 1) : '';
  return /^[0-9]{1,12}$/.test(rest) ? Number(rest) : 0;
}

/** A run still going: its process has not ended (created-but-never-started counts as ended: nothing will start it). */
export function isGoing(c: Pick<ObservedContainer, 'state'>): boolean {
  return c.state === 'running' || c.state === 'restarting' || c.state === 'paused';
}
