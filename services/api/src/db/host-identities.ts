import type { JoinToken } from '@nebula/contracts';
import { type Database, type Kysely, type Selectable, sql, type Transaction } from '@nebula/db';

/**
 * Join tokens, host credentials and revoked keys (tables of migration 20261202010000). Plain
 * functions taking `db` or a transaction first; the join, renewal and revocation flows
 * (../hosts/enrolment.ts) compose them inside one transaction each.
 */
type Q = Kysely<Database> | Transaction<Database>;

export type JoinTokenRow = Selectable<Database['join_tokens']>;
export type HostCredentialRow = Selectable<Database['host_credentials']>;

export function toJoinToken(r: JoinTokenRow): JoinToken {
  return {
    id: r.id,
    created_at: r.created_at.toISOString(),
    created_by: r.created_by,
    expires_at: r.expires_at.toISOString(),
    uses_left: r.uses_left,
    apps: r.apps,
    description: r.description,
    region: r.region,
  };
}

export async function insertJoinToken(
  db: Q,
  t: {
    id: string;
    secretHash: string;
    createdBy: string;
    expiresAt: Date;
    uses: number;
    apps: string[] | null;
    description: string | null;
    region: string | null;
  },
): Promise<JoinTokenRow> {
  return db
    .insertInto('join_tokens')
    .values({
      id: t.id,
      secret_hash: t.secretHash,
      created_by: t.createdBy,
      expires_at: t.expiresAt,
      uses_left: t.uses,
      apps: t.apps,
      description: t.description,
      region: t.region,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Newest first; the secrets' hashes are not read. */
export async function listJoinTokens(db: Q): Promise<JoinToken[]> {
  const rows = await db
    .selectFrom('join_tokens')
    .select(['id', 'created_at', 'created_by', 'expires_at', 'uses_left', 'apps', 'description', 'region'])
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(1000)
    .execute();
  return rows.map((r) => toJoinToken({ ...r, secret_hash: '' }));
}

export async function deleteJoinToken(db: Q, id: string): Promise<boolean> {
  const r = await db.deleteFrom('join_tokens').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** The token's row (not locked: spendJoinToken decides a race for its last use). */
export async function getJoinToken(db: Q, id: string): Promise<JoinTokenRow | undefined> {
  return db.selectFrom('join_tokens').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Spends one use of the token if it still has one and has not expired: false when another join
 * took the last use meanwhile. Its row stays locked only until the caller's transaction ends, so
 * the joins of a fleet sharing one token wait for each other only for this statement and the commit.
 */
export async function spendJoinToken(trx: Transaction<Database>, id: string, now: Date): Promise<boolean> {
  const r = await trx
    .updateTable('join_tokens')
    .set({ uses_left: sql`uses_left - 1` })
    .where('id', '=', id)
    .where('uses_left', '>', 0)
    .where('expires_at', '>', now)
    .returning('id')
    .executeTakeFirst();
  return r !== undefined;
}

/** Joins of one host id wait for each other (a transaction-level advisory lock: no row may exist yet). */
export async function lockHostJoin(trx: Transaction<Database>, hostId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`host-join:${hostId}`}, 0))`.execute(trx);
}

export async function getHostCredential(db: Q, hostId: string): Promise<HostCredentialRow | undefined> {
  return db.selectFrom('host_credentials').selectAll().where('host_id', '=', hostId).executeTakeFirst();
}

export async function lockHostCredential(trx: Transaction<Database>, hostId: string): Promise<HostCredentialRow | undefined> {
  return trx.selectFrom('host_credentials').selectAll().where('host_id', '=', hostId).forUpdate().executeTakeFirst();
}

/** In one round trip: whether the key was revoked, and the host id it is registered for (another host's key cannot be taken over). */
export async function keyStanding(db: Q, publicKey: string): Promise<{ revoked: boolean; owner: string | null }> {
  const r = await sql<{ revoked: boolean; owner: string | null }>`
    select exists (select 1 from revoked_keys where public_key = ${publicKey}) as revoked,
           (select host_id from host_credentials where public_key = ${publicKey} limit 1) as owner`.execute(db);
  const row = r.rows[0];
  return { revoked: row?.revoked === true, owner: row?.owner ?? null };
}

/** A join: the host's row is created, or replaced (new key, apps, region, expiry; not revoked any more). */
export async function upsertHostCredential(
  trx: Transaction<Database>,
  c: {
    hostId: string;
    publicKey: string;
    allowedApps: string[] | null;
    apps: string[];
    deviceGroup: string | null;
    region: string | null;
    tokenId: string;
    expiresAt: Date;
  },
): Promise<HostCredentialRow> {
  const values = {
    host_id: c.hostId,
    public_key: c.publicKey,
    allowed_apps: c.allowedApps,
    apps: c.apps,
    device_group: c.deviceGroup,
    region: c.region,
    token_id: c.tokenId,
    expires_at: c.expiresAt,
  };
  return trx
    .insertInto('host_credentials')
    .values(values)
    .onConflict((oc) =>
      oc.column('host_id').doUpdateSet({
        public_key: c.publicKey,
        allowed_apps: c.allowedApps,
        apps: c.apps,
        device_group: c.deviceGroup,
        region: c.region,
        token_id: c.tokenId,
        expires_at: c.expiresAt,
        joined_at: sql`now()`,
        renewed_at: sql`now()`,
        revoked_at: null,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function recordRenewal(
  trx: Transaction<Database>,
  hostId: string,
  apps: string[],
  deviceGroup: string | null,
  expiresAt: Date,
): Promise<HostCredentialRow> {
  return trx
    .updateTable('host_credentials')
    .set({ apps, device_group: deviceGroup, expires_at: expiresAt, renewed_at: sql`now()` })
    .where('host_id', '=', hostId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Marks the host revoked (keeps the first revocation time) and its key refused; idempotent. */
export async function recordRevocation(trx: Transaction<Database>, cred: HostCredentialRow): Promise<Date> {
  const row = await trx
    .updateTable('host_credentials')
    .set({ revoked_at: sql`coalesce(revoked_at, now())` })
    .where('host_id', '=', cred.host_id)
    .returning('revoked_at')
    .executeTakeFirstOrThrow();
  const revokedAt = row.revoked_at ?? new Date();
  await revokeKey(trx, { publicKey: cred.public_key, hostId: cred.host_id, expiresAt: cred.expires_at, revokedAt });
  return revokedAt;
}

/** Adds a key to the account's revocation list, until its last credential expires. */
export async function revokeKey(db: Q, k: { publicKey: string; hostId: string; expiresAt: Date; revokedAt?: Date }): Promise<void> {
  await db
    .insertInto('revoked_keys')
    .values({ public_key: k.publicKey, host_id: k.hostId, expires_at: k.expiresAt, ...(k.revokedAt ? { revoked_at: k.revokedAt } : {}) })
    .onConflict((oc) => oc.column('public_key').doUpdateSet({ expires_at: sql`greatest(revoked_keys.expires_at, excluded.expires_at)` }))
    .execute();
}

/**
 * The account's revocation list: every revoked key whose last credential has not expired yet
 * (an expired one is refused by the server anyway), as key -> unix seconds. Credentials issued up to
 * that second are refused; + 1 covers one issued in the very second of the revocation.
 */
export async function liveRevocations(db: Q): Promise<Record<string, number>> {
  const rows = await db.selectFrom('revoked_keys').select(['public_key', 'revoked_at']).where('expires_at', '>', sql<Date>`now()`).execute();
  return Object.fromEntries(rows.map((r) => [r.public_key, Math.floor(r.revoked_at.getTime() / 1000) + 1]));
}

/** Arbitrary constant, distinct from the migration, relay and retention locks. */
const REVOCATION_PUSH_LOCK_ID = 727_011;

/**
 * Runs `push` with the current revocation list under a transaction-level advisory lock: replicas
 * push one at a time, each the whole list as committed, so an older list never lands after a newer.
 */
export async function withRevocationList<T>(db: Kysely<Database>, push: (list: Record<string, number>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${REVOCATION_PUSH_LOCK_ID})`.execute(trx);
    return push(await liveRevocations(trx));
  });
}
