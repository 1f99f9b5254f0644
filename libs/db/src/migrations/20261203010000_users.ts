import { type Kysely, sql } from 'kysely';

/**
 * Users and user groups of the API (written by the API only):
 *
 *   users        a name, the hash of its password (scrypt) and of its token (SHA-256: tokens are random),
 *                never the secrets themselves
 *   user_groups  members and what they may do: per-app (device group, cron job) "ro" | "rw",
 *                admin, pruning_allowed, privileged_allowed
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('user_name', 'text', (c) => c.primaryKey())
    .addColumn('password_hash', 'text')
    .addColumn('token_hash', 'text', (c) => c.unique())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('user_groups')
    .addColumn('user_group', 'text', (c) => c.primaryKey())
    .addColumn('group_members', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('apps', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('device_groups', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('cron_jobs', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('admin', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('pruning_allowed', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('privileged_allowed', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // A request of a user reads its groups: `$1 = ANY(group_members)`.
  await sql`CREATE INDEX user_groups_members ON user_groups USING gin (group_members)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('user_groups').execute();
  await db.schema.dropTable('users').execute();
}
