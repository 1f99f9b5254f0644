import { createUser, type KeyPair } from '@nats-io/nkeys';
import { jwtExpiry, keyFromSeed, signMessage } from '@nebula/bus-auth';
import { type consumerTuningSchema, type HostCredential, parseJoinToken, RENEW_SUBJECT, type RenewRequest, renewSigningBytes } from '@nebula/contracts';
import { ConfigError, type Logger } from '@nebula/service-kit';
import type { z } from 'zod';
import { WorkerError } from '../errors.ts';
import { type ControlPlaneClient, ControlPlaneKeyMismatchError, checkJoinAnswer, httpControlPlaneClient } from './control-plane-client.ts';
import { CredentialFileError, readCredentialFile, type StoredCredential, writeCredentialFile } from './credential-file.ts';
import { joinRetryDelayMs, renewalDelayMs, retryDelayMs } from './renewal.ts';

/**
 * How a worker gets and keeps its bus identity:
 *
 *   credentials file for HOST_ID? ──yes──▶ renew (the control plane makes the consumers of the
 *        │                                  current APP_NAME, hands a fresh JWT) ──API down, JWT still
 *        │                                  valid──▶ go on with it, renew in the background
 *        no
 *        │
 *   NEBULA_URL + NEBULA_JOIN_TOKEN? ──no──▶ ConfigError naming both (exit 2)
 *        │yes
 *   new key pair; join with the public key only; the answer's key must match the token's
 *   fingerprint; file written (mode 600); the token is not kept
 *
 *   running: renewed at 2/3 of the JWT's lifetime (backoff on failure), and on demand (a consumer
 *   missing, or the device group changed the app set: provision); the NATS connection reads the
 *   newest JWT at each (re)connect.
 *
 * With a device group (DEVICE_GROUP), join and every renewal name it (the control plane makes the
 * host's consumer on GROUPS and grants its rights), and the apps asked for are the worker's current
 * set (APP_NAME and the group's apps): the last set `renew(apps)` was given, APP_NAME until then.
 */
export type ConsumerTuning = z.infer<typeof consumerTuningSchema>;

export interface HostIdentityConfig {
  hostId: string;
  /** APP_NAME: the apps asked for at join, and at renewal until the worker names its current set. */
  apps: readonly string[];
  /** DEVICE_GROUP, named at join and every renewal. */
  deviceGroup?: string | undefined;
  credentialsFile: string;
  nebulaUrl?: string | undefined;
  joinToken?: string | undefined;
  consumer: ConsumerTuning;
  /** The deadline of each HTTP call to the control plane. */
  timeoutMs: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /**
   * Tries of the join when the control plane answers it is busy or away (a 5xx, no answer within
   * `timeoutMs`): a fleet that joins at once rides out a control plane that sheds load, instead of
   * every worker failing its start (the waits jittered: joinRetryDelayMs). A refusal (4xx) is never
   * tried again. Default 8 (about a minute of waits at the default base).
   */
  joinAttempts?: number;
  log: Logger;
  /** The control plane's HTTP API (default: over fetch at the URL). */
  client?: (url: string) => ControlPlaneClient;
  now?: () => number;
}

export interface HostIdentity {
  readonly hostId: string;
  /** Pinned at join: app messages must carry its signature. */
  readonly controlPlaneKey: string;
  /** The host's own key: signs results, heartbeats and renewals. */
  readonly hostKey: KeyPair;
  /** The current JWT (renewed in the background). */
  jwt(): string;
  seed(): Uint8Array;
  expiresAt(): Date | null;
  /**
   * Renews now, asking for the consumers of `apps` (what `provision` does): from then on the set
   * every renewal asks for. Without it, the set asked for last (APP_NAME at first).
   */
  renew(apps?: readonly string[]): Promise<void>;
  /** Renews at two thirds of each JWT's lifetime from now on. */
  startRenewing(): void;
  stop(): void;
}

/** The credential is expired and the control plane cannot be reached to renew it. */
export class CredentialExpiredError extends WorkerError {
  override name = 'CredentialExpiredError';
  readonly retryable = true;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export async function establishIdentity(cfg: HostIdentityConfig): Promise<HostIdentity> {
  const now = cfg.now ?? Date.now;
  const clientFor = cfg.client ?? ((url: string) => httpControlPlaneClient(url, { timeoutMs: cfg.timeoutMs }));
  const { log, hostId } = cfg;
  let stored = readCredentialFile(cfg.credentialsFile);
  const joining = stored === null;
  if (stored !== null && stored.host_id !== hostId) {
    throw new CredentialFileError(
      `the credentials file ${cfg.credentialsFile} belongs to host ${stored.host_id}, not to HOST_ID ${hostId}: set NEBULA_CREDENTIALS_FILE to this host's file (or remove it to join again)`,
    );
  }
  if (stored === null) {
    stored = await join(cfg, clientFor, now);
    log.info({ host: hostId, file: cfg.credentialsFile, expiresAt: stored.expires_at, apps: stored.apps }, 'joined the fleet: credentials saved');
  } else if (cfg.joinToken !== undefined) {
    log.info({ file: cfg.credentialsFile }, 'already joined: NEBULA_JOIN_TOKEN is not used (it may be removed)');
  }

  let current: StoredCredential = stored;
  /** The worker's current app set: what every renewal asks for. */
  let currentApps: string[] = [...cfg.apps];
  const group = cfg.deviceGroup === undefined ? {} : { device_group: cfg.deviceGroup };
  const hostKey = keyFromSeed(current.seed);
  const seedBytes = new TextEncoder().encode(current.seed);
  const url = cfg.nebulaUrl ?? current.nebula_url;
  const client = clientFor(url);
  const retryBase = cfg.retryBaseMs ?? 1_000;
  const retryMax = cfg.retryMaxMs ?? 60_000;
  let chain: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;
  let renewing = false;
  let stopped = false;

  const expiry = (c: StoredCredential): Date | null => jwtExpiry(c.jwt) ?? (Number.isFinite(Date.parse(c.expires_at)) ? new Date(c.expires_at) : null);

  async function renewOnce(): Promise<void> {
    const at = new Date(now()).toISOString();
    const unsigned: Omit<RenewRequest, 'signature'> = { host_id: hostId, apps: [...currentApps], ...group, consumer: cfg.consumer, at };
    const answer = await client.renew({ ...unsigned, signature: signMessage(hostKey, RENEW_SUBJECT, renewSigningBytes(unsigned)) });
    if (answer.control_plane_key !== current.control_plane_key) {
      // The key pinned at join is the trust anchor: a renewal never replaces it.
      throw new ControlPlaneKeyMismatchError(`the API at ${url} answered with another control plane key than the one pinned at join: wrong NEBULA_URL?`);
    }
    current = { ...current, ...credentialFields(answer, now()), nebula_url: url };
    writeCredentialFile(cfg.credentialsFile, current);
    log.info({ expiresAt: current.expires_at, apps: current.apps, ...group }, 'credential renewed');
  }

  /** One renewal at a time: a provision asked while one runs waits for it, then renews again. */
  function renew(apps?: readonly string[]): Promise<void> {
    if (apps !== undefined) currentApps = [...new Set(apps)];
    const run = chain.then(renewOnce, renewOnce);
    chain = run.catch(() => undefined);
    return run;
  }

  function schedule(delayMs: number, failures: number): void {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = null;
    // A JWT without expiry is never renewed on a timer; a longer delay than setTimeout holds (24.8
    // days) would fire at once: wake up then and compute again.
    if (!Number.isFinite(delayMs)) return;
    const capped = Math.min(delayMs, MAX_TIMER_MS);
    timer = setTimeout(() => {
      timer = null;
      if (capped < delayMs) return schedule(nextDelay(), failures);
      renewing = true;
      renew().then(
        () => {
          renewing = false;
          schedule(nextDelay(), 0);
        },
        (err: unknown) => {
          renewing = false;
          const delay = retryDelayMs(failures + 1, retryBase, retryMax);
          log.warn({ err, failures: failures + 1, retryInMs: delay, expiresAt: current.expires_at }, 'credential renewal failed: retrying');
          schedule(delay, failures + 1);
        },
      );
    }, capped);
    timer.unref();
  }

  const nextDelay = () => {
    const exp = expiry(current);
    return exp === null ? Number.POSITIVE_INFINITY : renewalDelayMs({ receivedAt: Date.parse(current.received_at), expiresAt: exp.getTime(), now: now() });
  };

  let startFailures = 0;
  if (!joining) {
    // At every start but the first (the join did it): the control plane makes the consumers of
    // this APP_NAME and hands a fresh JWT.
    try {
      await renew();
    } catch (err) {
      const exp = expiry(current);
      const valid = exp === null || exp.getTime() > now() + 5_000;
      const retryable = err instanceof WorkerError && err.retryable;
      if (!retryable) throw err;
      if (!valid) {
        throw new CredentialExpiredError(`the credential expired at ${current.expires_at} and could not be renewed: ${(err as Error).message}`, { cause: err });
      }
      startFailures = 1;
      log.warn({ err, expiresAt: current.expires_at }, 'could not renew the credential at start: going on with the current one, retrying in the background');
    }
  }

  return {
    hostId,
    controlPlaneKey: current.control_plane_key,
    hostKey,
    jwt: () => current.jwt,
    seed: () => seedBytes,
    expiresAt: () => expiry(current),
    renew,
    startRenewing() {
      if (timer !== null || renewing) return;
      schedule(startFailures > 0 ? retryDelayMs(1, retryBase, retryMax) : nextDelay(), startFailures);
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

function credentialFields(
  answer: HostCredential,
  receivedAt: number,
): Pick<StoredCredential, 'jwt' | 'expires_at' | 'received_at' | 'apps' | 'device_group' | 'control_plane_key'> {
  return {
    jwt: answer.jwt,
    expires_at: answer.expires_at,
    received_at: new Date(receivedAt).toISOString(),
    apps: answer.apps,
    device_group: answer.device_group ?? null,
    control_plane_key: answer.control_plane_key,
  };
}

async function join(cfg: HostIdentityConfig, clientFor: (url: string) => ControlPlaneClient, now: () => number): Promise<StoredCredential> {
  if (cfg.nebulaUrl === undefined || cfg.joinToken === undefined) {
    const missing = [cfg.nebulaUrl === undefined ? 'NEBULA_URL' : null, cfg.joinToken === undefined ? 'NEBULA_JOIN_TOKEN' : null].filter(
      (v): v is string => v !== null,
    );
    throw new ConfigError(
      `this host has not joined yet (no credentials file at ${cfg.credentialsFile}): set NEBULA_URL and NEBULA_JOIN_TOKEN (from \`nebula hosts join-token create\`) to join (missing: ${missing.join(', ')})`,
      ['NEBULA_URL', 'NEBULA_JOIN_TOKEN'],
    );
  }
  const token = parseJoinToken(cfg.joinToken);
  if (token === null) throw new ConfigError('NEBULA_JOIN_TOKEN is not a join token (nebula-join.<fingerprint>.<id>.<secret>)', ['NEBULA_JOIN_TOKEN']);
  const key = createUser();
  const request = {
    token: cfg.joinToken,
    host_id: cfg.hostId,
    public_key: key.getPublicKey(),
    apps: [...cfg.apps],
    ...(cfg.deviceGroup === undefined ? {} : { device_group: cfg.deviceGroup }),
    consumer: cfg.consumer,
  };
  const client = clientFor(cfg.nebulaUrl);
  const attempts = Math.max(1, cfg.joinAttempts ?? 8);
  let answered: HostCredential | undefined;
  for (let attempt = 1; answered === undefined; attempt++) {
    try {
      answered = await client.join(request);
    } catch (err) {
      // A join the API could not take spent no use of the token (it is one transaction): try again.
      if (!(err instanceof WorkerError && err.retryable) || attempt >= attempts) throw err;
      const delay = joinRetryDelayMs(attempt, cfg.retryBaseMs ?? 1_000, Math.min(cfg.retryMaxMs ?? 60_000, 15_000), Math.random());
      cfg.log.warn({ err, attempt, retryInMs: delay }, 'join failed: the control plane is busy or away, trying again');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  const answer = checkJoinAnswer(token, answered);
  const cred: StoredCredential = {
    v: 1,
    host_id: cfg.hostId,
    nebula_url: cfg.nebulaUrl,
    seed: new TextDecoder().decode(key.getSeed()),
    ...credentialFields(answer, now()),
  };
  writeCredentialFile(cfg.credentialsFile, cred);
  return cred;
}
