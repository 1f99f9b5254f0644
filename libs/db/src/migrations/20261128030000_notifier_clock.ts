import { type Kysely, sql } from 'kysely';

/** When the notifier last confirmed it had caught up with the hosts' heartbeats. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('notifier_clock')
    .addColumn('id', 'smallint', (c) => c.primaryKey())
    .addColumn('alive_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('notifier_clock').execute();
}
