import { type Database, type Kysely, sql, type Transaction } from '@nebula/db';
import { type GroupListChange, type GroupLists, planGroupLists } from '../device-group-lists.ts';
import { DeviceGroupExistsError, DeviceGroupNotFoundError } from '../errors.ts';
import { type GroupState, lockGroupMembership, lockLiveGroup, toGroupState } from './device-groups.ts';
import { type GroupAction, type GroupChangeOptions, recordGroupMessage, resolveMembers } from './group-messages.ts';

/**
 * Device group changes. Each runs in ONE transaction that takes the membership lock
 * (device-groups.ts), changes the group's row, and writes its message and rollout
 * (group-messages.ts), so a change is either wholly there, message included, or not at all:
 *
 *   create   a new incarnation: device_group_id, prune_id and seq 1, or above a deleted group of that name
 *   update   lists changed (planGroupLists), device_group_id + 1, seq + 1       (action 'update')
 *   prune    prune_id + 1, seq + 1                                             (action 'prune')
 *   delete   deleted_at, seq + 1; the message says `deleted` with empty lists  (action 'delete')
 *   cron job updated (cron-jobs.ts): seq + 1 of every live group naming it    (action 'cron_job')
 */
type Db = Kysely<Database>;

export interface GroupChangeResult {
  group: GroupState;
  rolloutId: string;
  expectedHosts: string[];
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

async function bump(
  trx: Transaction<Database>,
  g: GroupState,
  action: GroupAction,
  opts: GroupChangeOptions,
  lists: GroupLists = g,
): Promise<GroupChangeResult> {
  const jobs = action === 'delete' ? [] : await resolveMembers(trx, lists, action === 'update');
  const row = await trx
    .updateTable('device_groups')
    .set({
      apps: lists.apps,
      cron_jobs: lists.cron_jobs,
      seq: sql<number>`seq + 1`,
      updated_at: sql<Date>`now()`,
      ...(action === 'update' ? { device_group_id: sql<number>`device_group_id + 1` } : {}),
      ...(action === 'prune' ? { prune_id: sql<number>`prune_id + 1` } : {}),
      ...(action === 'delete' ? { deleted_at: sql<Date>`now()` } : {}),
    })
    .where('incarnation', '=', String(g.incarnation))
    .returningAll()
    .executeTakeFirstOrThrow();
  const group = toGroupState(row);
  const r = await recordGroupMessage(trx, group, action, jobs, opts);
  return { group, rolloutId: r.rolloutId, expectedHosts: r.expectedHosts };
}

/** A new group; DeviceGroupExistsError when a live one has the name; the original's missing-member answers otherwise. */
export async function createDeviceGroup(db: Db, name: string, lists: GroupLists, opts: GroupChangeOptions): Promise<GroupChangeResult> {
  try {
    return await db.transaction().execute(async (trx) => {
      await lockGroupMembership(trx);
      if (await lockLiveGroup(trx, name)) throw new DeviceGroupExistsError(name);
      const planned = planGroupLists({ apps: [], cron_jobs: [] }, { kind: 'replace', ...lists });
      const jobs = await resolveMembers(trx, planned, true);
      const above = (column: 'device_group_id' | 'prune_id' | 'seq') =>
        sql<number>`(select coalesce(max(${sql.ref(column)}), 0) + 1 from device_groups where name = ${name})`;
      const row = await trx
        .insertInto('device_groups')
        .values({
          name,
          apps: planned.apps,
          cron_jobs: planned.cron_jobs,
          device_group_id: above('device_group_id'),
          prune_id: above('prune_id'),
          seq: above('seq'),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const group = toGroupState(row);
      const r = await recordGroupMessage(trx, group, 'create', jobs, opts);
      return { group, rolloutId: r.rolloutId, expectedHosts: r.expectedHosts };
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new DeviceGroupExistsError(name, { cause: err });
    throw err;
  }
}

async function withLiveGroup<T>(db: Db, name: string, f: (trx: Transaction<Database>, g: GroupState) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await lockGroupMembership(trx);
    const g = await lockLiveGroup(trx, name);
    if (!g) throw new DeviceGroupNotFoundError(name);
    return f(trx, g);
  });
}

/** POST update (replace) or PUT/PATCH (patch); device_group_id + 1. */
export function changeDeviceGroup(db: Db, name: string, change: GroupListChange, opts: GroupChangeOptions): Promise<GroupChangeResult> {
  return withLiveGroup(db, name, (trx, g) => bump(trx, g, 'update', opts, planGroupLists(g, change)));
}

/** prune_id + 1: every host of the group removes the images it no longer needs. */
export function pruneDeviceGroup(db: Db, name: string, opts: GroupChangeOptions): Promise<GroupChangeResult> {
  return withLiveGroup(db, name, (trx, g) => bump(trx, g, 'prune', opts));
}

/** The last message (deleted, empty lists: hosts drop the group's apps and jobs), then gone. */
export async function deleteDeviceGroup(db: Db, name: string, opts: GroupChangeOptions): Promise<GroupChangeResult> {
  return withLiveGroup(db, name, (trx, g) => bump(trx, g, 'delete', opts));
}

/** Live groups' rows, locked, by name (`only`: those names). */
async function lockLiveGroups(trx: Transaction<Database>, only?: (qb: Transaction<Database>) => Promise<string[]>): Promise<GroupState[]> {
  let q = trx.selectFrom('device_groups').selectAll().where('deleted_at', 'is', null);
  if (only) {
    const names = await only(trx);
    if (names.length === 0) return [];
    q = q.where('name', 'in', names);
  }
  const rows = await q.orderBy('name').forUpdate().execute();
  return rows.map(toGroupState);
}

/** POST /prune: every live group's prune_id + 1, one message and rollout each. */
export async function pruneAllDeviceGroups(db: Db, opts: GroupChangeOptions): Promise<GroupChangeResult[]> {
  return db.transaction().execute(async (trx) => {
    await lockGroupMembership(trx);
    const out: GroupChangeResult[] = [];
    for (const g of await lockLiveGroups(trx)) out.push(await bump(trx, g, 'prune', opts));
    return out;
  });
}

/**
 * Within a cron job's update (its transaction, the membership lock taken, the job's new config
 * written): a new message for every live group that names the job, carrying the new config.
 */
export async function groupsAfterCronJobChange(trx: Transaction<Database>, job: string, opts: GroupChangeOptions): Promise<GroupChangeResult[]> {
  const groups = await lockLiveGroups(trx, async (t) => {
    const rows = await t
      .selectFrom('device_groups')
      .select('name')
      .where('deleted_at', 'is', null)
      .where(sql<boolean>`cron_jobs @> array[${job}]::text[]`)
      .execute();
    return rows.map((r) => r.name);
  });
  const out: GroupChangeResult[] = [];
  for (const g of groups) out.push(await bump(trx, g, 'cron_job', opts));
  return out;
}
