import { type Kysely, sql } from 'kysely';

/**
 * What device groups need of existing tables:
 *
 *   hosts.device_group     the group the host's newest heartbeat says it follows (null: none):
 *                          the expected hosts of a group change
 *   rollouts.kind          'app' (every rollout so far) or 'group': a device group change, tracked host
 *                          by host like an app's (then `app` holds the group's name, `incarnation`
 *                          the group's incarnation and `revision` the group message's seq)
 *   rollouts.device_group  the group of a 'group' rollout; null for an app's
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('hosts').addColumn('device_group', 'text').execute();
  await db.schema
    .alterTable('rollouts')
    .addColumn('kind', 'text', (c) => c.notNull().defaultTo('app').check(sql`kind in ('app', 'group')`))
    .addColumn('device_group', 'text')
    .execute();
  await sql`CREATE INDEX hosts_device_group ON hosts (device_group) WHERE device_group IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('rollouts').dropColumn('device_group').dropColumn('kind').execute();
  await db.schema.alterTable('hosts').dropColumn('device_group').execute();
}
