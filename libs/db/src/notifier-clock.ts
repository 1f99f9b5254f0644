import { type Kysely, sql } from 'kysely';
import type { Database } from './database.ts';

/** How often a running notifier that is caught up says so (see `judgedAt` in query-input.ts). */
export const NOTIFIER_CLOCK_TICK_MS = 1000;

/** The notifier is alive and has written every heartbeat it was given: hosts may be judged up to now. */
export async function touchNotifierClock(db: Kysely<Database>): Promise<void> {
  await db
    .insertInto('notifier_clock')
    // The database's clock, like every other judgement of hosts (a notifier's clock may be off).
    .values({ id: 1, alive_at: sql<Date>`now()` })
    .onConflict((oc) => oc.column('id').doUpdateSet({ alive_at: sql<Date>`now()` }))
    .execute();
}
