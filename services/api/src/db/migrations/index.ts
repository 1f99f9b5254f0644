import type { Migration } from 'kysely';

/** Every migration of the API's schema, by timestamped name (applied in name order). */
export const migrations: Record<string, Migration> = {};
