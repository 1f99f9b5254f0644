import { z } from 'zod';
import { deviceGroupNameSchema } from './device-groups.ts';
import { appNameSchema, hostIdSchema, regionNameSchema } from './names.ts';

/**
 * How a host joins the fleet and keeps its bus credential (served by the API, used by the worker):
 *
 *   admin  ── POST /api/v2/hosts/join_tokens ──▶  token `nebula-join.<fingerprint>.<id>.<secret>`
 *   host   ── POST /api/v2/hosts/join {token, host_id, public_key, apps} ──▶ its NATS JWT, the
 *             control plane's message key (its fingerprint must be the token's), consumers made
 *   host   ── POST /api/v2/hosts/renew {host_id, apps, at, signature} ──▶ a new JWT (before expiry,
 *             at each start, and when a consumer is missing); signed with the host's own key
 *   admin  ── POST /api/v2/hosts/<id>/revoke ──▶ its connection closed, its results refused
 *
 * Only the host's public key travels; its seed never leaves the host.
 */
export const JOIN_TOKEN_PREFIX = 'nebula-join';

/** `U` + 55 base32 characters: a NATS user public key. */
export const userPublicKeySchema = z.string().regex(/^U[A-Z2-7]{55}$/, 'must be a NATS user public key (U followed by 55 base32 characters)');

export interface JoinTokenParts {
  /** The control plane key's fingerprint (keyFingerprint of its public key). */
  fingerprint: string;
  id: string;
  secret: string;
}

export function formatJoinToken(p: JoinTokenParts): string {
  return `${JOIN_TOKEN_PREFIX}.${p.fingerprint}.${p.id}.${p.secret}`;
}

/** Null when the text is not a join token. */
export function parseJoinToken(text: string): JoinTokenParts | null {
  const m = /^nebula-join\.([0-9a-f]{32})\.([0-9a-f-]{36})\.([A-Za-z0-9_-]{20,100})$/.exec(text.trim());
  return m ? { fingerprint: m[1] as string, id: m[2] as string, secret: m[3] as string } : null;
}

export const joinTokenCreateSchema = z.object({
  /** Default 1 h; at most 30 days. */
  ttl_seconds: z
    .number()
    .int()
    .min(60)
    .max(30 * 24 * 3600)
    .default(3600),
  /** How many hosts may join with it (default 1). */
  uses: z.number().int().min(1).max(100_000).default(1),
  /** The apps its hosts may serve (default: any). */
  apps: z.array(appNameSchema).max(1000).optional(),
  description: z.string().max(200).optional(),
  /**
   * The region its hosts join (NATS_REGIONS of the API: their consumers are made in that region's
   * JetStream domain, their workers connect to its leaf servers). Absent or null: the hub.
   */
  region: regionNameSchema.nullable().optional(),
});
export type JoinTokenCreate = z.input<typeof joinTokenCreateSchema>;

export const joinTokenSchema = z.object({
  id: z.string(),
  created_at: z.string(),
  created_by: z.string(),
  expires_at: z.string(),
  uses_left: z.number().int(),
  apps: z.array(z.string()).nullable(),
  description: z.string().nullable(),
  /** Null: the hub. */
  region: z.string().nullable(),
});
export type JoinToken = z.infer<typeof joinTokenSchema>;

/** Answer to a token's creation: the only time the token itself is shown. */
export const joinTokenCreatedSchema = joinTokenSchema.extend({
  token: z.string(),
  /** How to start an installed worker with it (`nebula-worker`, deploy/install-worker.sh). */
  command: z.string(),
  /** How to start the worker image with it: one `docker run` per host. */
  docker_command: z.string(),
});
export type JoinTokenCreated = z.infer<typeof joinTokenCreatedSchema>;

/** Consumer tuning the host asks for (bounded by the API). */
export const consumerTuningSchema = z.object({
  ack_wait_seconds: z.number().min(1).max(3600).optional(),
  inactive_threshold_hours: z
    .number()
    .min(0.001)
    .max(24 * 365)
    .optional(),
});

export const joinRequestSchema = z.object({
  token: z.string().min(1).max(300),
  host_id: hostIdSchema,
  public_key: userPublicKeySchema,
  apps: z.array(appNameSchema).max(1000),
  /** The device group the host follows (DEVICE_GROUP): the control plane makes its consumer on GROUPS too. */
  device_group: deviceGroupNameSchema.optional(),
  consumer: consumerTuningSchema.optional(),
});
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export const renewRequestSchema = z.object({
  host_id: hostIdSchema,
  apps: z.array(appNameSchema).max(1000),
  /** As at join: the group it follows. Its apps are in `apps` (the host asks for what its group names). */
  device_group: deviceGroupNameSchema.optional(),
  consumer: consumerTuningSchema.optional(),
  /** The host's time of the request: the API refuses one more than 24 hours off (a replay). */
  at: z.iso.datetime(),
  /** signMessage(host key, RENEW_SUBJECT, renewSigningBytes(request)). */
  signature: z.string().min(1).max(200),
});
export type RenewRequest = z.infer<typeof renewRequestSchema>;

/** What a renewal signature covers (as the `subject` of signMessage). */
export const RENEW_SUBJECT = 'nebula.hosts.renew';

export function renewSigningBytes(r: Omit<RenewRequest, 'signature'>): Uint8Array {
  const apps = [...r.apps].sort().join(',');
  // Without a group the bytes are those of a worker from before groups, so both still verify.
  const group = r.device_group === undefined ? '' : `\ngroup:${r.device_group}`;
  return new TextEncoder().encode(`${r.host_id}\n${apps}\n${r.at}\n${JSON.stringify(r.consumer ?? {})}${group}`);
}

export const hostCredentialSchema = z.object({
  host_id: z.string(),
  /** The host's NATS user JWT (its key's seed stays on the host). */
  jwt: z.string(),
  expires_at: z.string(),
  /** The apps it has consumers and rights for. */
  apps: z.array(z.string()),
  /** The device group it has a consumer and rights for (absent: none). */
  device_group: z.string().nullable().optional(),
  /** The region it joined (its token's; its consumers are in that region's JetStream domain); null: the hub. */
  region: z.string().nullable().optional(),
  /** The control plane's message signing key (`N...`): app messages not signed by it are not applied. */
  control_plane_key: z.string(),
});
export type HostCredential = z.infer<typeof hostCredentialSchema>;

export const hostRevokedSchema = z.object({ host_id: z.string(), revoked_at: z.string() });
