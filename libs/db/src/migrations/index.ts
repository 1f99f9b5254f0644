import type { Migration } from 'kysely';

/**
 * Every migration of the schema, by timestamped name `YYYYMMDDHHMMSS_what` (applied in name order;
 * one that lands late with an older name is still applied).
 */
export const migrations: Record<string, Migration> = {};
