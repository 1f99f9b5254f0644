import { appConfigSchema, type RolloutSummary } from '@nebula/contracts';
import { type Kysely, sql } from 'kysely';
import type { AppState, PublishFailure } from './app-changes.ts';
import type { Database } from './database.ts';
import { prepared } from './prepared.ts';
import { checkOnline, type OnlineOptions } from './query-input.ts';
import { latestRolloutSql, type SummaryRow, summaryOfRow } from './rollout-progress.ts';

/** What one read of an app shows: the app, its latest rollout's summary (null before the first), its dead letters. */
export interface AppView {
  app: AppState;
  rollout: RolloutSummary | null;
  /** Revisions of this incarnation that could never be published, newest first (at most 10). */
  publishFailures: PublishFailure[];
}

type ViewRow = { [K in keyof SummaryRow]: SummaryRow[K] | null } & {
  app_incarnation: string;
  app_name: string;
  app_revision: number;
  app_config: unknown;
  app_updated_at: Date;
  app_rollout_id: string;
  failures: { revision: number; rollout_id: string; error: string | null; failed_at: string | null }[];
};

/**
 * A live app with its latest rollout and its dead letters in one statement (the most frequent read,
 * `GET /api/v2/apps/<name>`, a prepared statement): what `findLiveApp` and `listRollouts(..., { limit: 1 })`
 * return, with the dead letters, one round trip instead of three. Null when no live app has the name.
 * Times in the dead letters' JSON are cut to milliseconds, as the driver reads a timestamp.
 */
export async function getLiveAppView(db: Kysely<Database>, name: string, opts: OnlineOptions): Promise<AppView | null> {
  const o = checkOnline(opts);
  const { rows } = await db.executeQuery(
    prepared(
      sql<ViewRow>`
    select a.incarnation::text as app_incarnation, a.name as app_name, a.revision as app_revision, a.config as app_config,
           a.updated_at as app_updated_at, v.rollout_id::text as app_rollout_id, f.failures, latest.*
      from apps a
      join app_revisions v on v.incarnation = a.incarnation and v.revision = a.revision
     cross join lateral (
       select coalesce(json_agg(json_build_object('revision', p.revision, 'rollout_id', p.id, 'error', p.publish_error,
                                                  'failed_at', date_trunc('milliseconds', p.publish_failed_at)) order by p.revision desc), '[]'::json) as failures
         from (select revision, id, publish_error, publish_failed_at from rollouts
                where incarnation = a.incarnation and publish_error is not null
                order by revision desc limit 10) p
     ) f
      left join lateral (${latestRolloutSql(sql.ref('a.name'), o)}) latest on true
     where a.name = ${name} and a.deleted_at is null`.compile(db),
    ),
  );
  const row = rows[0];
  if (!row) return null;
  return {
    app: {
      incarnation: Number(row.app_incarnation),
      name: row.app_name,
      revision: row.app_revision,
      // Stored configs were validated on the way in; parsing again guards against hand-edited rows.
      config: appConfigSchema.parse(row.app_config),
      rolloutId: row.app_rollout_id,
      updatedAt: row.app_updated_at,
    },
    rollout: row.id === null ? null : await summaryOfRow(db, row as SummaryRow),
    publishFailures: row.failures.map((f) => ({
      revision: f.revision,
      rolloutId: f.rollout_id,
      error: f.error ?? '',
      failedAt: f.failed_at === null ? new Date(0) : new Date(f.failed_at),
    })),
  };
}
