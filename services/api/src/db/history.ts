import { appConfigSchema } from '@nebula/contracts';
import type { Database, Kysely } from '@nebula/db';
import type { RevisionRow } from './apps.ts';

export interface RevisionPage {
  /** Newest first, at most `limit`. */
  rows: RevisionRow[];
  /** The config of the revision just before the oldest row (null: that row is the first revision). */
  previousConfig: RevisionRow['config'] | null;
  /** Pass as `before` for the next (older) page; null on the last page. */
  next: number | null;
}

/**
 * One page of an incarnation's revisions, newest first, below `before` when given. Revisions count
 * from 1 without gaps, so `limit + 1` rows (the primary key (incarnation, revision) serves the
 * range) tell both whether an older page exists and the oldest shown row's predecessor, for its diff.
 */
export async function listRevisionPage(db: Kysely<Database>, incarnation: number, opts: { limit: number; before?: number | undefined }): Promise<RevisionPage> {
  let q = db
    .selectFrom('app_revisions')
    .select(['revision', 'action', 'actor', 'rollout_id', 'created_at', 'config', 'reason'])
    .where('incarnation', '=', String(incarnation))
    .orderBy('revision', 'desc')
    .limit(opts.limit + 1);
  if (opts.before !== undefined) q = q.where('revision', '<', opts.before);
  const found = await q.execute();
  const rows = found.map((r) => ({
    revision: r.revision,
    action: r.action,
    actor: r.actor,
    rolloutId: r.rollout_id,
    createdAt: r.created_at,
    config: appConfigSchema.parse(r.config),
    reason: r.reason,
  }));
  const page = rows.slice(0, opts.limit);
  const older = rows[opts.limit];
  const oldestShown = page.at(-1);
  if (older && !oldestShown) throw new Error(`revision history: a page of limit ${opts.limit} shows no row`);
  return { rows: page, previousConfig: older?.config ?? null, next: older && oldestShown ? oldestShown.revision : null };
}
