import { type Database, type Kysely, type Selectable, sql, type Transaction } from '@nebula/db';

/**
 * Device groups in PostgreSQL: reads. A group is one live row of `device_groups` (a deleted one
 * keeps its row, with `deleted_at`, so a group made again under its name starts its counters above
 * it). Changes are in device-group-changes.ts; each writes the group's message (group-messages.ts).
 */
type Q = Kysely<Database> | Transaction<Database>;

export interface GroupState {
  incarnation: number;
  name: string;
  device_group_id: number;
  prune_id: number;
  seq: number;
  apps: string[];
  cron_jobs: string[];
  createdAt: Date;
  updatedAt: Date;
}

type Row = Selectable<Database['device_groups']>;

export function toGroupState(r: Row): GroupState {
  return {
    incarnation: Number(r.incarnation),
    name: r.name,
    device_group_id: r.device_group_id,
    prune_id: r.prune_id,
    seq: r.seq,
    apps: r.apps,
    cron_jobs: r.cron_jobs,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function listLiveGroupNames(db: Q): Promise<string[]> {
  const rows = await db.selectFrom('device_groups').select('name').where('deleted_at', 'is', null).orderBy('name').execute();
  return rows.map((r) => r.name);
}

export async function findLiveGroup(db: Q, name: string): Promise<GroupState | null> {
  const r = await db.selectFrom('device_groups').selectAll().where('name', '=', name).where('deleted_at', 'is', null).executeTakeFirst();
  return r ? toGroupState(r) : null;
}

/** The live group's row, locked until the transaction ends (changes of one group queue here). */
export async function lockLiveGroup(trx: Transaction<Database>, name: string): Promise<GroupState | null> {
  const r = await trx.selectFrom('device_groups').selectAll().where('name', '=', name).where('deleted_at', 'is', null).forUpdate().executeTakeFirst();
  return r ? toGroupState(r) : null;
}

/** Live groups that name the app (or cron job), by name. */
export async function groupsNaming(db: Q, column: 'apps' | 'cron_jobs', name: string): Promise<string[]> {
  const rows = await db
    .selectFrom('device_groups')
    .select('name')
    .where('deleted_at', 'is', null)
    .where(sql<boolean>`${sql.ref(column)} @> array[${name}]::text[]`)
    .orderBy('name')
    .execute();
  return rows.map((r) => r.name);
}

/**
 * The lock every transaction takes first that changes what a group names or what a named app or
 * cron job is: group changes, app deletes, cron job deletes and updates. Row locks alone would need
 * two orders (a group change locks the group, then the jobs it names; a job's update locks the job,
 * then the groups that name it), and those two deadlock. One transaction-level advisory lock taken
 * before any row gives one order: a delete sees every group committed before it, a group change
 * every delete, and a job's update writes its new config into every group that names it. These are
 * rare, human-paced changes; app updates and the rest of the API never take it.
 */
const GROUP_MEMBERSHIP_LOCK_ID = 727_021;

export async function lockGroupMembership(trx: Transaction<Database>): Promise<void> {
  await sql`select pg_advisory_xact_lock(${GROUP_MEMBERSHIP_LOCK_ID})`.execute(trx);
}
