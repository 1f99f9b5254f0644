import { type Kysely, sql } from 'kysely';

/**
 * Which worker processes speak for a host (the `instance` nonce of their heartbeats), to flag two
 * workers running with one host id. Written by the notifier; see services/notifier/src/instances.ts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('hosts')
    .addColumn('instance', 'text')
    .addColumn('instances', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('duplicate_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('hosts').dropColumn('duplicate_at').dropColumn('instances').dropColumn('instance').execute();
}
