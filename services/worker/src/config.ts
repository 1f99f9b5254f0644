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

export const workerEnvSchema = z.object({
  APP_NAME: appList,
  HOST_ID: hostIdSchema.default(() => hostIdFromHostname(hostname())),
  NATS_URL: envVar.url('nats://127.0.0.1:4222'),
  DOCKER_HOST: z.string().default('unix:///var/run/docker.sock'),
  METRICS_PORT: envVar.port(8081),
  LOG_LEVEL: envVar.logLevel(),
});
export type WorkerEnv = z.output<typeof workerEnvSchema>;
