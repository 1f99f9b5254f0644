import { type Kysely, sql } from 'kysely';

/** What the notifier gathers: hosts from their heartbeats, and each host's result per rollout. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('hosts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('apps', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('running', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('cores', 'integer', (c) => c.notNull())
    .addColumn('memory_mb', 'integer', (c) => c.notNull())
    .addColumn('worker_version', 'text', (c) => c.notNull())
    .addColumn('heartbeat_interval_seconds', 'real', (c) => c.notNull())
    .addColumn('first_seen', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_seen', 'timestamptz', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('rollout_hosts')
    .addColumn('rollout_id', 'uuid', (c) => c.notNull())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('image_digest', 'text')
    .addColumn('containers', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('pull_ms', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('apply_ms', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reported_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('rollout_hosts_pk', ['rollout_id', 'host'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('rollout_hosts').execute();
  await db.schema.dropTable('hosts').execute();
}
