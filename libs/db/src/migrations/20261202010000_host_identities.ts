import { type Kysely, sql } from 'kysely';

/**
 * Hosts as principals on the bus (written by the API; the notifier reads the keys):
 *
 *   join_tokens       a secret shown once, stored as its SHA-256; expires; N uses; may restrict apps
 *   host_credentials  one row per host id: its public key (NATS identity and result signatures),
 *                     the apps it may serve and has consumers for, the expiry of its current JWT
 *   revoked_keys      keys whose credentials the servers refuse (the account's revocation list),
 *                     kept until the last JWT issued for them has expired
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('join_tokens')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('uses_left', 'integer', (c) => c.notNull())
    .addColumn('apps', sql`text[]`)
    .addColumn('description', 'text')
    .execute();
  await db.schema
    .createTable('host_credentials')
    .addColumn('host_id', 'text', (c) => c.primaryKey())
    .addColumn('public_key', 'text', (c) => c.notNull().unique())
    .addColumn('allowed_apps', sql`text[]`)
    .addColumn('apps', sql`text[]`, (c) => c.notNull())
    .addColumn('token_id', 'uuid')
    .addColumn('joined_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('renewed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema
    .createTable('revoked_keys')
    .addColumn('public_key', 'text', (c) => c.primaryKey())
    .addColumn('host_id', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('revoked_keys').execute();
  await db.schema.dropTable('host_credentials').execute();
  await db.schema.dropTable('join_tokens').execute();
}
