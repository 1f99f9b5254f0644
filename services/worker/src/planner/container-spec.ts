import { APP_DEFAULTS, type AppConfig, containerCount, envMap, type HostFacts, portBindings, stableHash } from '@nebula/contracts';
import { type ContainerSpec, LABELS, OWNER } from '../runtime/container-runtime.ts';

export interface SpecContext {
  hostId: string;
  app: string;
  incarnation: number;
  revision: number;
}

/** `<app>-<i>`, 1-based as in the original. */
export function containerName(app: string, index: number): string {
  return `${app}-${index}`;
}

/** How many containers of the app this host should run for the config (0 when stopped). */
export function desiredCount(config: AppConfig, host: HostFacts): number {
  return config.running ? containerCount(config.containers_per, host) : 0;
}

/**
 * The spec of container `index` (1-based). The config hash covers everything that makes the
 * container (not the revision), so a new revision that changes nothing does not recreate it.
 */
export function containerSpec(config: AppConfig, ctx: SpecContext, index: number): ContainerSpec {
  const base: Omit<ContainerSpec, 'labels'> & { labels: Record<string, string> } = {
    name: containerName(ctx.app, index),
    image: config.docker_image,
    env: { ...envMap(config.env_vars) },
    ports: portBindings(config.starting_ports, index - 1),
    volumes: [...config.volumes],
    devices: [...config.devices],
    privileged: config.privileged,
    networks: [...config.networks],
    command: config.command === null ? null : [...config.command],
    entrypoint: config.entrypoint === null ? null : [...config.entrypoint],
    labels: { ...config.labels },
    memoryLimitMb: config.memory_limit_mb,
    cpuLimit: config.cpu_limit,
    healthcheck:
      config.healthcheck === null
        ? null
        : {
            test: [...config.healthcheck.test],
            intervalSeconds: config.healthcheck.interval_seconds,
            timeoutSeconds: config.healthcheck.timeout_seconds,
            retries: config.healthcheck.retries,
            startPeriodSeconds: config.healthcheck.start_period_seconds,
          },
  };
  const log = { maxSizeMb: config.log_max_size_mb, maxFiles: config.log_max_files };
  // The default rotation is left out of the hash: containers made before rotation existed keep their
  // hash, so a new worker adopts them as they are (they get rotation when next replaced); a rotation
  // other than the default is part of the config and replaces them.
  const isDefaultLog = log.maxSizeMb === APP_DEFAULTS.log_max_size_mb && log.maxFiles === APP_DEFAULTS.log_max_files;
  const hash = stableHash(isDefaultLog ? base : { ...base, log });
  base.log = log;
  base.labels = {
    ...base.labels,
    [LABELS.owner]: OWNER,
    [LABELS.host]: ctx.hostId,
    [LABELS.app]: ctx.app,
    [LABELS.incarnation]: String(ctx.incarnation),
    [LABELS.revision]: String(ctx.revision),
    [LABELS.configHash]: hash,
    [LABELS.index]: String(index),
  };
  return base;
}
