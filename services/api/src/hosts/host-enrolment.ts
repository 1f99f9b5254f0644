import { randomBytes, randomUUID } from 'node:crypto';
import { type ControlPlaneKeys, hostPermissions, issueUserJwt, keyFingerprint, keyFromSeed, verifyMessage } from '@nebula/bus-auth';
import {
  formatJoinToken,
  type HostCredential,
  type JoinRequest,
  type JoinToken,
  type JoinTokenCreated,
  type joinTokenCreateSchema,
  parseJoinToken,
  RENEW_SUBJECT,
  type RenewRequest,
  renewSigningBytes,
} from '@nebula/contracts';
import type { Database, Kysely, Transaction } from '@nebula/db';
import type { Region } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import type { z } from 'zod';
import {
  deleteJoinToken,
  getHostCredential,
  getJoinToken,
  type HostCredentialRow,
  insertJoinToken,
  keyStanding,
  listJoinTokens,
  lockHostCredential,
  lockHostJoin,
  recordRenewal,
  recordRevocation,
  revokeKey,
  spendJoinToken,
  toJoinToken,
  upsertHostCredential,
} from '../db/host-identities.ts';
import { BusUnavailableError, EnrolmentRefusedError, HostNotJoinedError, JoinTokenNotFoundError, UnknownRegionError } from '../errors.ts';
import type { HostBus } from './host-bus.ts';
import { appsOutside, consumerTuning, hashSecret, isStale, joinCommands, joinRefusal } from './join-rules.ts';
import type { RevocationPusher } from './revocation-pusher.ts';

/**
 * Hosts as principals on the bus: join tokens, joins, renewals and revocations.
 *
 *   admin: create token ──▶ join_tokens (sha256 of the secret; expiry; uses; apps; region)
 *   host:  join ──▶ read + check the token (join-rules.ts) ──▶ its consumers made on NATS
 *                   (one per app on APPS; with `device_group`, one on GROUPS; no database connection
 *                   held) ──▶ [tx: lock the host id, check the key, upsert host_credentials, an old key
 *                   of the host id into revoked_keys, then spend a use (a conditional UPDATE: none
 *                   left, the join is refused)] ──▶ old consumers deleted ──▶ JWT with
 *                   hostPermissions(host, apps, group)
 *          renew (signed by its key) ──▶ consumers ──▶ [tx: lock its row, new expiry] ──▶ JWT
 *   admin: revoke ──▶ [tx: revoked_at, key into revoked_keys] ──▶ consumers deleted, list pushed
 *
 * A token may name a region (one of `regions`, NATS_REGIONS): its hosts' rows carry it, from the join
 * on (renewals keep it; a join with another token takes that one's), and their consumers are made
 * in that region's JetStream domain. No region: the hub.
 *
 * The consumers are made before the transaction and outside it, so a fleet joining at once holds
 * database connections only for its short transactions: when NATS cannot make them, the join fails
 * (503) and nothing is written, the token's use included; when the transaction fails, the consumers
 * of a host that had none are removed (a host that finds its consumer missing asks for it again).
 * A revocation is recorded first and pushed after; a push that fails is retried (RevocationPusher)
 * and the call answers 503.
 */
export interface HostEnrolmentDeps {
  db: Kysely<Database>;
  bus: HostBus;
  keys: ControlPlaneKeys;
  revocations: RevocationPusher;
  log: Logger;
  /** How long a host's NATS credential is valid (default 24 h). */
  credentialTtlMs?: number;
  /** The URL hosts reach the API at, for the join command (default: the request's origin). */
  publicUrl?: string | undefined;
  /** The NATS servers as hosts reach them, for the join command (comma-separated). */
  publicNatsUrl: string;
  /** The worker image join commands name (default `nebula/worker:latest`). */
  workerImage?: string | undefined;
  /** The regions tokens may name (NATS_REGIONS); a region's join commands name its servers. Default: none. */
  regions?: readonly Region[];
  now?: () => Date;
}

export type HostEnrolment = ReturnType<typeof createHostEnrolment>;

/** What a host's consumers are for: its apps, its device group, the region whose domain holds them. */
interface ConsumerSet {
  apps: readonly string[];
  group: string | null;
  region: string | null;
}

/** A revoked key, or one registered for another host id, cannot join. */
async function refuseKey(db: Kysely<Database> | Transaction<Database>, hostId: string, publicKey: string): Promise<void> {
  const { revoked, owner } = await keyStanding(db, publicKey);
  if (revoked) {
    throw new EnrolmentRefusedError('key revoked', 'this public key was revoked: generate a new key pair and join again');
  }
  if (owner !== null && owner !== hostId) {
    throw new EnrolmentRefusedError('key of another host', `this public key is registered for host ${owner}: every host needs a key of its own`);
  }
}

export function createHostEnrolment(deps: HostEnrolmentDeps) {
  const { db, bus, keys, log } = deps;
  const now = deps.now ?? (() => new Date());
  const ttlMs = deps.credentialTtlMs ?? 24 * 3_600_000;
  const controlPlaneKey = keyFromSeed(keys.message_signing_seed).getPublicKey();
  const fingerprint = keyFingerprint(controlPlaneKey);
  const regions = deps.regions ?? [];

  async function credential(row: HostCredentialRow): Promise<HostCredential> {
    const jwt = await issueUserJwt(keys, {
      name: row.host_id,
      publicKey: row.public_key,
      permissions: hostPermissions(row.host_id, row.apps, row.device_group),
      expiresAt: row.expires_at,
    });
    return {
      host_id: row.host_id,
      jwt,
      expires_at: row.expires_at.toISOString(),
      apps: row.apps,
      device_group: row.device_group,
      region: row.region,
      control_plane_key: controlPlaneKey,
    };
  }

  /**
   * Consumers for `apps` and the group (on GROUPS), in the region's domain (idempotent). Made before
   * the database is written and outside its transactions, so a join holds no connection across
   * the NATS calls.
   */
  async function makeConsumers(hostId: string, want: ConsumerSet, tuning: ReturnType<typeof consumerTuning>) {
    try {
      await bus.ensureConsumers(hostId, want.region, want.apps, tuning);
      if (want.group !== null) await bus.ensureGroupConsumer(hostId, want.region, want.group, tuning);
    } catch (err) {
      const where = want.region === null ? '' : ` in region ${want.region}`;
      throw new BusUnavailableError(`could not create the consumers of host ${hostId}${where}`, { cause: err });
    }
  }

  /**
   * After the commit: those of apps the host no longer serves go, and that of a group it no longer
   * follows, and all of them in a region it left (best effort: they expire anyway).
   */
  async function dropOldConsumers(hostId: string, want: ConsumerSet, before: ConsumerSet) {
    const moved = before.region !== want.region;
    const gone = moved ? [...before.apps] : before.apps.filter((a) => !want.apps.includes(a));
    const region = before.region;
    if (gone.length > 0) {
      await bus
        .deleteConsumers(hostId, region, gone)
        .catch((err: unknown) => log.warn({ err, host: hostId, region, apps: gone }, 'could not delete old consumers'));
    }
    if (before.group !== null && (moved || before.group !== want.group)) {
      const old = before.group;
      await bus
        .deleteGroupConsumer(hostId, region, old)
        .catch((err: unknown) => log.warn({ err, host: hostId, region, device_group: old }, 'could not delete the old group consumer'));
    }
  }

  function regionOf(name: string | null | undefined): Region | null {
    if (name === null || name === undefined) return null;
    const region = regions.find((r) => r.name === name);
    if (!region)
      throw new UnknownRegionError(
        name,
        regions.map((r) => r.name),
      );
    return region;
  }

  /** Best effort: a consumer left behind expires anyway (its inactive threshold). */
  /** The consumers a host's credential row stands for. */
  function consumersOf(row: Pick<HostCredentialRow, 'apps' | 'device_group' | 'region'>): ConsumerSet {
    return { apps: row.apps, group: row.device_group, region: row.region };
  }

  async function dropNewConsumers(hostId: string, made: ConsumerSet) {
    await bus
      .deleteConsumers(hostId, made.region, made.apps)
      .catch((err: unknown) => log.warn({ err, host: hostId }, 'could not delete the consumers of an undone join'));
    if (made.group !== null) {
      await bus
        .deleteGroupConsumer(hostId, made.region, made.group)
        .catch((err: unknown) => log.warn({ err, host: hostId }, 'could not delete the group consumer of an undone join'));
    }
  }

  return {
    controlPlaneKey,
    fingerprint,

    async createToken(input: z.output<typeof joinTokenCreateSchema>, actor: string, origin: string): Promise<JoinTokenCreated> {
      const region = regionOf(input.region);
      const id = randomUUID();
      const secret = randomBytes(32).toString('base64url');
      const apps = input.apps ? [...new Set(input.apps)].sort() : null;
      const row = await insertJoinToken(db, {
        id,
        secretHash: hashSecret(secret),
        createdBy: actor,
        expiresAt: new Date(now().getTime() + input.ttl_seconds * 1000),
        uses: input.uses,
        apps,
        description: input.description ?? null,
        region: region?.name ?? null,
      });
      const token = formatJoinToken({ fingerprint, id, secret });
      log.info({ token_id: id, uses: input.uses, apps, region: region?.name ?? null, actor }, 'join token created');
      const commands = joinCommands({
        apiUrl: deps.publicUrl ?? origin,
        // A region's hosts reach only its leaf servers.
        natsUrl: region ? region.servers.join(',') : deps.publicNatsUrl,
        token,
        apps,
        image: deps.workerImage ?? 'nebula/worker:latest',
      });
      return { ...toJoinToken(row), token, ...commands };
    },

    listTokens(): Promise<JoinToken[]> {
      return listJoinTokens(db);
    },

    async deleteToken(id: string): Promise<void> {
      if (!(await deleteJoinToken(db, id))) throw new JoinTokenNotFoundError(id);
    },

    async join(req: JoinRequest): Promise<HostCredential> {
      const parts = parseJoinToken(req.token);
      if (!parts) throw new EnrolmentRefusedError('malformed token', 'not a join token (expected nebula-join.<fingerprint>.<id>.<secret>)');
      if (parts.fingerprint !== fingerprint) {
        throw new EnrolmentRefusedError(
          'wrong control plane',
          `the join token is for another control plane (key fingerprint ${parts.fingerprint}; this API's is ${fingerprint})`,
        );
      }
      const apps = [...new Set(req.apps)].sort();
      const group = req.device_group ?? null;
      const tuning = consumerTuning(req.consumer);
      // Checked first without locks, so a join with a bad token makes nothing on NATS.
      const token = await getJoinToken(db, parts.id);
      const refusal = joinRefusal(token, parts.secret, apps, now());
      if (refusal || !token) throw refusal;
      const want: ConsumerSet = { apps, group, region: token.region };
      const hadRow = (await getHostCredential(db, req.host_id)) !== undefined;
      await makeConsumers(req.host_id, want, tuning);
      let committed: { row: HostCredentialRow; replacedKey: HostCredentialRow | null; before: ConsumerSet };
      try {
        committed = await db.transaction().execute(async (trx) => {
          // Under the host id's lock (joins of one host id wait for each other here). The token
          // may have been spent, deleted or expired meanwhile: spendJoinToken finds that.
          await lockHostJoin(trx, req.host_id);
          await refuseKey(trx, req.host_id, req.public_key);
          const existing = await lockHostCredential(trx, req.host_id);
          const row = await upsertHostCredential(trx, {
            hostId: req.host_id,
            publicKey: req.public_key,
            allowedApps: token.apps,
            apps,
            deviceGroup: group,
            region: token.region,
            tokenId: token.id,
            expiresAt: new Date(now().getTime() + ttlMs),
          });
          // The host id joins again with another key (a reinstalled machine): the old key stops working.
          const replacedKey = existing && existing.public_key !== req.public_key ? existing : null;
          if (replacedKey) await revokeKey(trx, { publicKey: replacedKey.public_key, hostId: replacedKey.host_id, expiresAt: replacedKey.expires_at });
          // Spent last (a conditional UPDATE): the token's row is locked only from here to the commit.
          if (!(await spendJoinToken(trx, token.id, now()))) {
            throw new EnrolmentRefusedError(
              'token used',
              'join token already used (or deleted or expired meanwhile): create a new one (nebula hosts join-token create)',
            );
          }
          const before = existing ? consumersOf(existing) : { apps: [], group: null, region: null };
          return { row, replacedKey, before };
        });
      } catch (err) {
        // Nothing was written: the consumers of a host that had none are removed (those of a host
        // that joined before stay, as its credential does; a host that finds one missing asks again).
        if (!hadRow && (await getHostCredential(db, req.host_id).catch(() => undefined)) === undefined) await dropNewConsumers(req.host_id, want);
        throw err;
      }
      const { row, replacedKey, before } = committed;
      await dropOldConsumers(req.host_id, want, before);
      log.info({ host: req.host_id, apps, device_group: group, region: row.region, token_id: parts.id, replaced_key: replacedKey !== null }, 'host joined');
      if (replacedKey) {
        // The join stands; a failed push is retried in the background.
        await deps.revocations.push().catch((err: unknown) => log.warn({ err, host: req.host_id }, 'the replaced key is recorded but not yet revoked on NATS'));
      }
      return credential(row);
    },

    async renew(req: RenewRequest): Promise<HostCredential> {
      const found = await getHostCredential(db, req.host_id);
      if (!found) throw new EnrolmentRefusedError('host unknown', `host ${req.host_id} never joined: join with a token first`);
      if (found.revoked_at) {
        throw new EnrolmentRefusedError(
          'host revoked',
          `host ${req.host_id} was revoked at ${found.revoked_at.toISOString()}: it must join again with a new token and key`,
        );
      }
      if (isStale(req.at, now())) {
        throw new EnrolmentRefusedError(
          'stale request',
          `the request's time ${req.at} is more than 24 hours from the API's (${now().toISOString()}): check the host's clock`,
        );
      }
      const { signature, ...signed } = req;
      if (!verifyMessage(found.public_key, RENEW_SUBJECT, renewSigningBytes(signed), signature)) {
        throw new EnrolmentRefusedError('bad signature', `the renewal is not signed by the key host ${req.host_id} joined with`);
      }
      const apps = [...new Set(req.apps)].sort();
      const outside = appsOutside(apps, found.allowed_apps);
      if (outside.length > 0) {
        throw new EnrolmentRefusedError(
          'apps not allowed',
          `host ${req.host_id} may not serve ${outside.join(', ')} (its join token allows ${found.allowed_apps?.join(', ')})`,
          {
            apps: outside,
          },
        );
      }
      // A group that does not exist (yet) is fine: its consumer waits for the group's first message.
      const group = req.device_group ?? null;
      const want: ConsumerSet = { apps, group, region: found.region };
      await makeConsumers(req.host_id, want, consumerTuning(req.consumer));
      let renewed: { row: HostCredentialRow; before: ConsumerSet };
      try {
        renewed = await db.transaction().execute(async (trx) => {
          // Again under the row lock: a revocation or a new join may have come in meanwhile.
          const cred = await lockHostCredential(trx, req.host_id);
          if (!cred || cred.public_key !== found.public_key || cred.revoked_at || cred.region !== found.region) {
            throw new EnrolmentRefusedError('host revoked', `host ${req.host_id} was revoked or joined again with another key meanwhile`);
          }
          return { row: await recordRenewal(trx, req.host_id, apps, group, new Date(now().getTime() + ttlMs)), before: consumersOf(cred) };
        });
      } catch (err) {
        if (err instanceof EnrolmentRefusedError) {
          // Revoked meanwhile: what this renewal made goes (best effort; its credential is refused
          // anyway). Joined again: the new join's consumers stay, only what it does not serve goes.
          const current = await getHostCredential(db, req.host_id).catch(() => undefined);
          if (!current || current.revoked_at) await dropNewConsumers(req.host_id, want);
          else await dropOldConsumers(req.host_id, consumersOf(current), want);
        }
        throw err;
      }
      const { row, before } = renewed;
      await dropOldConsumers(req.host_id, want, before);
      log.info({ host: req.host_id, apps, device_group: group }, 'host credential renewed');
      return credential(row);
    },

    /** Idempotent: revoking a revoked host pushes the list and deletes its consumers again. */
    async revoke(hostId: string): Promise<{ host_id: string; revoked_at: string }> {
      const { revokedAt, apps, group, region } = await db.transaction().execute(async (trx) => {
        const cred = await lockHostCredential(trx, hostId);
        if (!cred) throw new HostNotJoinedError(hostId);
        return { revokedAt: await recordRevocation(trx, cred), apps: cred.apps, group: cred.device_group, region: cred.region };
      });
      log.info({ host: hostId }, 'host revoked');
      let failure: unknown = null;
      await bus.deleteConsumers(hostId, region, apps).catch((err: unknown) => {
        failure = err;
      });
      if (group !== null) {
        await bus.deleteGroupConsumer(hostId, region, group).catch((err: unknown) => {
          failure ??= err;
        });
      }
      await deps.revocations.push().catch((err: unknown) => {
        failure ??= err;
      });
      if (failure !== null) {
        throw new BusUnavailableError(
          `host ${hostId} is revoked in the database but NATS has not applied it yet (retried in the background; revoke again to retry now)`,
          {
            cause: failure,
          },
        );
      }
      return { host_id: hostId, revoked_at: revokedAt.toISOString() };
    },
  };
}
