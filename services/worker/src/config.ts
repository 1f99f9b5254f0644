import { hostname } from 'node:os';
import { appNameSchema, hostIdFromHostname, hostIdSchema } from '@nebula/contracts';
import { envVar } from '@nebula/service-kit';
import { z } from 'zod';

/** `APP_NAME=a,b,c`: the apps this host serves (its "pod"). Empty or unset: none yet. */
const appList = z
  .string()
  .default('')
  .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x.length > 0))
  .pipe(z.array(appNameSchema).refine((a) => new Set(a).size === a.length, 'an app is listed twice'));

const seconds = (fallback: number, min = 0) => z.coerce.number().min(min).max(86_400 * 365).default(fallback);

export const workerEnvSchema = z.object({
  APP_NAME: appList,
  HOST_ID: hostIdSchema.default(() => hostIdFromHostname(hostname())),
  NATS_URL: envVar.url('nats://127.0.0.1:4222'),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  DOCKER_HOST: z.string().default('unix:///var/run/docker.sock'),
  /** Registry credentials, as the original; without them ~/.docker/config.json is used if present. */
  REGISTRY_AUTH_USER: z.string().optional(),
  REGISTRY_AUTH_PASSWORD: z.string().optional(),
  /** The registry the credentials are for (default Docker Hub). */
  REGISTRY_HOST: z.string().optional(),
  /** A random delay of up to this many seconds before a restart, to spread a fleet's restarts. */
  MAX_RESTART_WAIT_IN_SECONDS: seconds(0),
  HEARTBEAT_INTERVAL_SECONDS: seconds(5, 0.1),
  /** The server forgets the consumers of a host gone for this long. */
  CONSUMER_INACTIVE_THRESHOLD_HOURS: seconds(72, 0.001),
  /** SIGTERM, then SIGKILL after this many seconds. */
  STOP_TIMEOUT_SECONDS: seconds(5),
  /** How long an action may go without `working()` before its message is redelivered. */
  ACK_WAIT_SECONDS: seconds(30, 1),
  HEALTH_CHECK_INTERVAL_SECONDS: seconds(10, 0.1),
  /** The deadline of one Docker engine call; a stop or restart also gets its stop timeout. */
  ENGINE_CALL_TIMEOUT_SECONDS: seconds(30, 0.1),
  /** An image pull that makes no progress for this long is aborted (retryable). */
  PULL_STALL_TIMEOUT_SECONDS: seconds(60, 0.1),
  /** A whole convergence (pull, plan, apply) still running after this long is aborted (retryable). */
  CONVERGE_TIMEOUT_SECONDS: seconds(1800, 0.1),
  /** A convergence without progress for this long gives way to a newer revision waiting. */
  STUCK_AFTER_SECONDS: seconds(60, 0.1),
  /** A rolled container without healthcheck must stay up this long before the next one. */
  ROLL_SETTLE_SECONDS: seconds(2),
  METRICS_PORT: envVar.port(8081),
  LOG_LEVEL: envVar.logLevel(),
});
export type WorkerEnv = z.output<typeof workerEnvSchema>;
