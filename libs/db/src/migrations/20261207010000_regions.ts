import type { Kysely } from 'kysely';

/**
 * Regions (NATS leaf nodes, each with a JetStream domain named like it):
 *
 *   join_tokens.region       the region its hosts join; null: the hub
 *   host_credentials.region  the region the host joined (its token's, kept at renewals); its
 *                            consumers are in that region's domain; null: the hub
 *
 * Rows from before regions are hub hosts and tokens, as they were.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('join_tokens').addColumn('region', 'text').execute();
  await db.schema.alterTable('host_credentials').addColumn('region', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('host_credentials').dropColumn('region').execute();
  await db.schema.alterTable('join_tokens').dropColumn('region').execute();
}
