import { DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS } from '@nebula/contracts';
import { dbEnvShape } from '@nebula/db';
import { regionsEnv, streamReplicasEnv } from '@nebula/messaging';
import { envVar } from '@nebula/service-kit';
import { z } from 'zod';
import { parseOrigin } from './http/cross-site.ts';

const optionalSecret = z.string().min(1).optional();

export const apiEnvSchema = z.object({
  ...dbEnvShape,
  API_PORT: envVar.port(8080),
  API_HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: envVar.url('postgres://nebula:nebula@127.0.0.1:5432/nebula'),
  /** One server or several, comma-separated (`tls://` outside loopback). */
  NATS_URL: envVar.urlList('nats://127.0.0.1:4222'),
  /** The API's own NATS identity: the path of its creds file (no anonymous connection). */
  NATS_CREDS: z.string().min(1),
  /** PEM of a private CA the NATS servers' certificates are checked against. */
  NATS_TLS_CA: z.string().min(1).optional(),
  /** Copies of the APPS stream the API keeps in a NATS cluster: 3 on three servers. */
  NATS_STREAM_REPLICAS: streamReplicasEnv,
  /** JSON file of the control plane's bus keys (ControlPlaneKeys): host credentials, revocations, app message signatures. */
  BUS_KEYS_FILE: z.string().min(1),
  /** The URL hosts reach this API at, for the command a join token prints (default: the request's origin). */
  API_PUBLIC_URL: z.url().optional(),
  /** PEM files (paths) of the certificate (chain) and private key to serve HTTPS with; both or neither (tls-config.ts). */
  API_TLS_CERT: z.string().min(1).optional(),
  API_TLS_KEY: z.string().min(1).optional(),
  /**
   * Origins (`https://console.example.com`, comma-separated) whose pages may send changes, besides
   * the API's own and API_PUBLIC_URL's (see http/cross-site.ts). Default: none.
   */
  API_ALLOWED_ORIGINS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const entries = v
        .split(',')
        .map((e) => e.trim())
        .filter((e) => e !== '');
      const origins: string[] = [];
      entries.forEach((e, i) => {
        const origin = parseOrigin(e);
        if (origin === null)
          ctx.addIssue({ code: 'custom', message: `entry ${i + 1} is not an origin: scheme://host[:port], e.g. https://console.example.com` });
        else origins.push(origin);
      });
      return origins;
    }),
  /** The NATS servers as hosts reach them, for the commands a join token prints (default: NATS_URL). */
  NATS_PUBLIC_URL: z
    .string()
    .refine((v) => v.split(',').every((s) => URL.canParse(s.trim())), 'must be a URL or comma-separated URLs')
    .transform((v) => v.split(',').map((s) => s.trim()))
    .optional(),
  /**
   * Regions: NATS leaf nodes (or leaf clusters), each with a JetStream domain named like the region,
   * as `name=url` entries, comma-separated; a name again adds a server:
   * `eu=tls://10.0.0.2:4222,eu=tls://10.0.0.3:4222,us=tls://us.example:4222`. Join tokens may name
   * one; its hosts' consumers are made in its domain, and revocations are pushed to its servers too.
   * Default: none (every host in the hub's domain).
   */
  NATS_REGIONS: regionsEnv,
  /** The worker image the printed `docker run` names. */
  WORKER_IMAGE: z.string().min(1).default('nebula/worker:latest'),
  /** How long a host's NATS credential is valid; the host renews it before. */
  HOST_CREDENTIAL_TTL_HOURS: z.coerce
    .number()
    .min(0.01)
    .max(24 * 365)
    .default(24),
  /** Failed joins or renewals per source address and minute before it gets 429. */
  HOST_JOIN_MAX_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(10),
  LOG_LEVEL: envVar.logLevel(),
  /** The local admin, as in the original: basic auth user and password, and/or a bearer token. */
  BASIC_AUTH_USER: optionalSecret,
  BASIC_AUTH_PASSWORD: optionalSecret,
  AUTH_TOKEN: optionalSecret,
  /** Only `true` is accepted (the original's `false` let anyone in): kept so an old config fails with a clear message. */
  AUTH_ENABLED: envVar.bool(true),
  /** Failed logins (wrong credentials) per source address and minute before 429. */
  API_LOGIN_MAX_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(20),
  /** Failed logins per user name and minute before 429 (from any address). */
  API_LOGIN_MAX_FAILURES_PER_USER_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(10),
  /** A host counts as online (and is expected to apply a rollout) until it misses this many heartbeats. */
  HOST_OFFLINE_AFTER_MISSED_HEARTBEATS: z.coerce.number().int().min(1).max(1000).default(DEFAULT_OFFLINE_AFTER_MISSED_HEARTBEATS),
  /** Largest accepted request body. */
  API_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  /** How often the publishing replica compares the APPS stream with PostgreSQL (and puts back what it lost); 0: only at start. */
  APPS_STREAM_CHECK_SECONDS: z.coerce.number().min(0).max(86_400).default(30),
  /** Calls per tRPC batch request; larger batches get 400. */
  API_MAX_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(20),
  /** Open `rollouts.watch` streams per user (or token); one more gets 429. */
  API_WATCH_MAX_PER_IDENTITY: z.coerce.number().int().min(1).max(10_000).default(10),
  /** A watch stream is ended after this long; the client reconnects. */
  API_WATCH_MAX_DURATION_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(24 * 3_600_000)
    .default(15 * 60_000),
  /** Keep-alive ping comment on watch streams. */
  API_WATCH_PING_MS: z.coerce.number().int().min(100).max(600_000).default(15_000),
  /** Published outbox rows, rollouts (with their results) and hosts not seen for this long are deleted. */
  RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).default(30),
  /** How often a replica prunes (one at a time, under an advisory lock). */
  RETENTION_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(7 * 86_400_000)
    .default(3_600_000),
  /** Rows per table per batch. */
  /** Host reports (GET /api/v2/reports) older than this are deleted (by the same job, in batches of 10 000). */
  REPORT_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).default(7),
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1000),
});
export type ApiEnv = z.output<typeof apiEnvSchema>;
