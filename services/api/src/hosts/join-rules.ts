import { createHash, timingSafeEqual } from 'node:crypto';
import type { consumerTuningSchema } from '@nebula/contracts';
import { DEFAULT_HOST_CONSUMER_TUNING, type HostConsumerTuning } from '@nebula/messaging';
import type { z } from 'zod';
import { EnrolmentRefusedError } from '../errors.ts';

/**
 * The decisions of joining and renewing, pure (no I/O, the time passed in): what the API refuses
 * and why. host-enrolment.ts does the reading, locking and writing around them.
 */

/** What is stored of a token's secret. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Compares two hex digests in constant time (a wrong length is simply unequal). */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export interface TokenFacts {
  secret_hash: string;
  expires_at: Date;
  uses_left: number;
  apps: string[] | null;
}

/**
 * Why this token does not admit a host serving `apps` at `now`, or null when it does. The secret is
 * checked first: a caller who does not hold it learns nothing about the token (not even that it
 * exists or expired).
 */
export function joinRefusal(token: TokenFacts | undefined, secret: string, apps: readonly string[], now: Date): EnrolmentRefusedError | null {
  if (token === undefined || !sameDigest(token.secret_hash, hashSecret(secret))) {
    return new EnrolmentRefusedError('unknown token', 'unknown join token: it was deleted, or never issued by this control plane');
  }
  if (token.expires_at.getTime() <= now.getTime()) {
    return new EnrolmentRefusedError(
      'token expired',
      `join token expired at ${token.expires_at.toISOString()}: create a new one (nebula hosts join-token create)`,
    );
  }
  if (token.uses_left <= 0) return new EnrolmentRefusedError('token used', 'join token already used: create a new one (nebula hosts join-token create)');
  const outside = appsOutside(apps, token.apps);
  if (outside.length > 0) {
    return new EnrolmentRefusedError('apps not allowed', `the join token does not allow the apps ${outside.join(', ')} (it allows ${token.apps?.join(', ')})`, {
      apps: outside,
    });
  }
  return null;
}

/** The apps of `wanted` that `allowed` does not permit (null: every app is). */
export function appsOutside(wanted: readonly string[], allowed: readonly string[] | null): string[] {
  if (allowed === null) return [];
  const ok = new Set(allowed);
  return [...new Set(wanted)].filter((a) => !ok.has(a)).sort();
}

/**
 * How far a renewal's `at` may be from the API's clock: farther, it is a replay (or a broken clock).
 * Wide on purpose: a host's clock may be minutes off (everything else judges hosts by the server's
 * clock), and a replayed renewal only hands a JWT to whoever holds the host's key, since the servers
 * want the connection's nonce signed with it. The window bounds how long a captured request lasts.
 */
export const RENEW_MAX_SKEW_MS = 24 * 3_600_000;

export function isStale(at: string, now: Date): boolean {
  const t = Date.parse(at);
  return !Number.isFinite(t) || Math.abs(t - now.getTime()) > RENEW_MAX_SKEW_MS;
}

/** The consumer tuning a host asked for (the schema bounds it), the defaults for the rest. */
export function consumerTuning(asked: z.output<typeof consumerTuningSchema> | undefined): HostConsumerTuning {
  return {
    ackWaitMs: asked?.ack_wait_seconds !== undefined ? Math.round(asked.ack_wait_seconds * 1000) : DEFAULT_HOST_CONSUMER_TUNING.ackWaitMs,
    inactiveThresholdMs:
      asked?.inactive_threshold_hours !== undefined ? Math.round(asked.inactive_threshold_hours * 3_600_000) : DEFAULT_HOST_CONSUMER_TUNING.inactiveThresholdMs,
    maxAckPending: DEFAULT_HOST_CONSUMER_TUNING.maxAckPending,
  };
}

/** What a join command needs to name: where hosts reach the API and NATS, the token, the apps, the worker image. */
export interface JoinCommandInput {
  apiUrl: string;
  /** The NATS servers as hosts reach them (comma-separated URLs). */
  natsUrl: string;
  token: string;
  apps: readonly string[] | null;
  /** The worker image, `nebula/worker:<version>`. */
  image: string;
}

/**
 * The ways to start a worker with a new token, ready to paste: the worker as a container (the Docker
 * socket to manage containers, the machine id for a host id that survives the container, a volume for
 * its credentials so a re-created container is the same host), and the installed worker's shell form.
 */
export function joinCommands(c: JoinCommandInput): { command: string; docker_command: string } {
  const appList = c.apps && c.apps.length > 0 ? c.apps.join(',') : '<app,...>';
  const command = `NEBULA_URL=${c.apiUrl} NATS_URL=${c.natsUrl} NEBULA_JOIN_TOKEN=${c.token} APP_NAME=${appList} nebula-worker`;
  const docker_command = [
    'docker run -d --restart unless-stopped --name nebula-worker',
    '-v /var/run/docker.sock:/var/run/docker.sock -v /etc/machine-id:/etc/machine-id:ro -v nebula-worker:/var/lib/nebula',
    `-e NEBULA_URL=${c.apiUrl} -e NATS_URL=${c.natsUrl} -e NEBULA_JOIN_TOKEN=${c.token} -e APP_NAME=${appList}`,
    c.image,
  ].join(' ');
  return { command, docker_command };
}
