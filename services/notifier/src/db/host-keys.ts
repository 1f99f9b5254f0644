import { type Database, type Kysely, sql } from '@nebula/db';
import type { HostKeyRow, HostKeySource } from '../host-keys.ts';

/** The hosts' registered keys (written by the API at join, renewal and revocation). */
export function dbHostKeySource(db: Kysely<Database>): HostKeySource {
  const base = () => db.selectFrom('host_credentials').select(['host_id', 'public_key', sql<boolean>`revoked_at is not null`.as('revoked')]);
  return {
    all: (): Promise<HostKeyRow[]> => base().execute(),
    one: async (hostId: string): Promise<HostKeyRow | null> => (await base().where('host_id', '=', hostId).executeTakeFirst()) ?? null,
  };
}
