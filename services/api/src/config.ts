import { envVar } from '@nebula/service-kit';
import { z } from 'zod';

export const apiEnvSchema = z.object({
  API_PORT: envVar.port(8080),
  API_HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: envVar.url('postgres://nebula:nebula@127.0.0.1:5432/nebula'),
  NATS_URL: envVar.url('nats://127.0.0.1:4222'),
  LOG_LEVEL: envVar.logLevel(),
});
export type ApiEnv = z.output<typeof apiEnvSchema>;
