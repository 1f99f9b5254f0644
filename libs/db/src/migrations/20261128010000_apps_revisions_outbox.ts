import { type Kysely, sql } from 'kysely';

/** Apps, their immutable revisions, rollouts, and the outbox the API's relay publishes from. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('apps')
    .addColumn('incarnation', 'bigserial', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('config', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deleted_at', 'timestamptz')
    .execute();
  // One live app per name; a deleted name can be created again as a new incarnation.
  await sql`create unique index apps_live_name on apps (name) where deleted_at is null`.execute(db);

  await db.schema
    .createTable('app_revisions')
    .addColumn('incarnation', 'bigint', (c) => c.notNull().references('apps.incarnation'))
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('config', 'jsonb', (c) => c.notNull())
    .addColumn('actor', 'text')
    .addColumn('rollout_id', 'uuid', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('app_revisions_pk', ['incarnation', 'revision'])
    .execute();

  await db.schema
    .createTable('rollouts')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('app', 'text', (c) => c.notNull())
    .addColumn('incarnation', 'bigint', (c) => c.notNull())
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('expected_hosts', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('published_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('rollouts_app_created').on('rollouts').columns(['app', 'created_at desc']).execute();

  await db.schema
    .createTable('outbox')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('msg_id', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('published_at', 'timestamptz')
    .execute();
  await sql`create index outbox_unpublished on outbox (id) where published_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['outbox', 'rollouts', 'app_revisions', 'apps']) await db.schema.dropTable(t).execute();
}
