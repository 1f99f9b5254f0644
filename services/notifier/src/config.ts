import { envVar } from '@nebula/service-kit';
import { z } from 'zod';

export const notifierEnvSchema = z.object({
  DATABASE_URL: envVar.url('postgres://nebula:nebula@127.0.0.1:5432/nebula'),
  NATS_URL: envVar.url('nats://127.0.0.1:4222'),
  METRICS_PORT: envVar.port(8082),
  LOG_LEVEL: envVar.logLevel(),
});
export type NotifierEnv = z.output<typeof notifierEnvSchema>;
