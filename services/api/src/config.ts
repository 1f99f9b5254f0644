import { DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS } from '@nebula/contracts';
import { envVar } from '@nebula/service-kit';
import { z } from 'zod';

const optionalSecret = z.string().min(1).optional();

export const apiEnvSchema = z.object({
  API_PORT: envVar.port(8080),
  API_HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: envVar.url('postgres://nebula:nebula@127.0.0.1:5432/nebula'),
  NATS_URL: envVar.url('nats://127.0.0.1:4222'),
  LOG_LEVEL: envVar.logLevel(),
  /** The local admin, as in the original: basic auth user and password, and/or a bearer token. */
  BASIC_AUTH_USER: optionalSecret,
  BASIC_AUTH_PASSWORD: optionalSecret,
  AUTH_TOKEN: optionalSecret,
  AUTH_ENABLED: envVar.bool(true),
  /** A host counts as online (and is expected to apply a rollout) until it misses this many heartbeats. */
  HOST_OFFLINE_AFTER_MISSED_HEARTBEATS: z.coerce.number().int().min(1).max(1000).default(DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS),
  /** Largest accepted request body. */
  API_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** How often the publishing replica compares the APPS stream with PostgreSQL (and puts back what it lost); 0: only at start. */
  APPS_STREAM_CHECK_SECONDS: z.coerce.number().min(0).max(86_400).default(30),
});
export type ApiEnv = z.output<typeof apiEnvSchema>;
