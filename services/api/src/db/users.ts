import type { UserDoc, UserGroupConfig, UserGroupDoc, UserGroupPatch } from '@nebula/contracts';
import type { Database, Kysely } from '@nebula/db';
import { TokenInUseError, UserExistsError, UserGroupExistsError, UserGroupNotFoundError, UserNotFoundError } from '../access/errors.ts';

/**
 * Users and user groups in PostgreSQL: hashes in, documents without them out. The hashing itself
 * (access/secrets.ts) happens before these are called, outside any transaction.
 */
type Db = Kysely<Database>;

export interface StoredUser {
  user_name: string;
  password_hash: string | null;
  token_hash: string | null;
}

function uniqueViolation(err: unknown): string | null {
  if (typeof err !== 'object' || err === null || (err as { code?: unknown }).code !== '23505') return null;
  return String((err as { constraint?: unknown }).constraint ?? '');
}

function toUserDoc(r: { user_name: string; password_hash: string | null; token_hash: string | null; created_at: Date; updated_at: Date }): UserDoc {
  return {
    user_name: r.user_name,
    password_set: r.password_hash !== null,
    token_set: r.token_hash !== null,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

const USER_COLUMNS = ['user_name', 'password_hash', 'token_hash', 'created_at', 'updated_at'] as const;

export async function findUserByName(db: Db, name: string): Promise<StoredUser | null> {
  const r = await db.selectFrom('users').select(['user_name', 'password_hash', 'token_hash']).where('user_name', '=', name).executeTakeFirst();
  return r ?? null;
}

export async function findUserByTokenHash(db: Db, tokenHash: string): Promise<StoredUser | null> {
  const r = await db.selectFrom('users').select(['user_name', 'password_hash', 'token_hash']).where('token_hash', '=', tokenHash).executeTakeFirst();
  return r ?? null;
}

export async function listUserNames(db: Db): Promise<string[]> {
  const rows = await db.selectFrom('users').select('user_name').orderBy('user_name').execute();
  return rows.map((r) => r.user_name);
}

export async function getUser(db: Db, name: string): Promise<UserDoc | null> {
  const r = await db.selectFrom('users').select(USER_COLUMNS).where('user_name', '=', name).executeTakeFirst();
  return r ? toUserDoc(r) : null;
}

function rethrowUnique(err: unknown, name: string): never {
  const constraint = uniqueViolation(err);
  if (constraint === 'users_token_hash_key') throw new TokenInUseError();
  if (constraint !== null) throw new UserExistsError(name);
  throw err;
}

export async function createUser(db: Db, name: string, hashes: { password_hash: string; token_hash: string }): Promise<UserDoc> {
  try {
    const r = await db
      .insertInto('users')
      .values({ user_name: name, ...hashes })
      .returning(USER_COLUMNS)
      .executeTakeFirstOrThrow();
    return toUserDoc(r);
  } catch (err) {
    return rethrowUnique(err, name);
  }
}

/** Sets the given hashes; UserNotFoundError (`{"user_name": false}`, the original's body) when there is no such user. */
export async function updateUser(db: Db, name: string, hashes: { password_hash?: string; token_hash?: string }): Promise<UserDoc> {
  try {
    const r = await db
      .updateTable('users')
      .set({ ...hashes, updated_at: new Date() })
      .where('user_name', '=', name)
      .returning(USER_COLUMNS)
      .executeTakeFirst();
    if (!r) throw new UserNotFoundError(name, 'user_name');
    return toUserDoc(r);
  } catch (err) {
    return rethrowUnique(err, name);
  }
}

/** Deletes the user and takes it out of every group: a user made again later with the name starts with no rights. */
export async function deleteUser(db: Db, name: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const r = await trx.deleteFrom('users').where('user_name', '=', name).executeTakeFirst();
    if (r.numDeletedRows === 0n) throw new UserNotFoundError(name);
    await trx
      .updateTable('user_groups')
      .set((eb) => ({ group_members: eb.fn('array_remove', ['group_members', eb.val(name)]), updated_at: new Date() }))
      .where((eb) => eb(eb.val(name), '=', eb.fn.any('group_members')))
      .execute();
  });
}

const GROUP_COLUMNS = ['user_group', 'group_members', 'apps', 'device_groups', 'cron_jobs', 'admin', 'pruning_allowed', 'privileged_allowed'] as const;

/** The groups that list the user as a member. */
export async function groupsOfUser(db: Db, name: string): Promise<UserGroupDoc[]> {
  return db
    .selectFrom('user_groups')
    .select(GROUP_COLUMNS)
    .where((eb) => eb(eb.val(name), '=', eb.fn.any('group_members')))
    .orderBy('user_group')
    .execute();
}

export async function listGroupNames(db: Db): Promise<string[]> {
  const rows = await db.selectFrom('user_groups').select('user_group').orderBy('user_group').execute();
  return rows.map((r) => r.user_group);
}

export async function getGroup(db: Db, name: string): Promise<UserGroupDoc | null> {
  const r = await db.selectFrom('user_groups').select(GROUP_COLUMNS).where('user_group', '=', name).executeTakeFirst();
  return r ?? null;
}

function groupValues(g: Partial<UserGroupConfig>) {
  const { apps, device_groups, cron_jobs, ...flags } = g;
  return {
    ...flags,
    ...(apps === undefined ? {} : { apps: JSON.stringify(apps) }),
    ...(device_groups === undefined ? {} : { device_groups: JSON.stringify(device_groups) }),
    ...(cron_jobs === undefined ? {} : { cron_jobs: JSON.stringify(cron_jobs) }),
  };
}

export async function createGroup(db: Db, name: string, g: UserGroupConfig): Promise<UserGroupDoc> {
  try {
    return await db
      .insertInto('user_groups')
      .values({ user_group: name, ...groupValues(g) })
      .returning(GROUP_COLUMNS)
      .executeTakeFirstOrThrow();
  } catch (err) {
    if (uniqueViolation(err) !== null) throw new UserGroupExistsError(name);
    throw err;
  }
}

/** Merges the given fields into the group (a map given replaces that map). */
export async function patchGroup(db: Db, name: string, patch: UserGroupPatch): Promise<UserGroupDoc> {
  const r = await db
    .updateTable('user_groups')
    .set({ ...groupValues(patch), updated_at: new Date() })
    .where('user_group', '=', name)
    .returning(GROUP_COLUMNS)
    .executeTakeFirst();
  if (!r) throw new UserGroupNotFoundError(name);
  return r;
}

export async function deleteGroup(db: Db, name: string): Promise<void> {
  const r = await db.deleteFrom('user_groups').where('user_group', '=', name).executeTakeFirst();
  if (r.numDeletedRows === 0n) throw new UserGroupNotFoundError(name);
}
