import type { Migration } from 'kysely';
import * as appsRevisionsOutbox from './20261128010000_apps_revisions_outbox.ts';
import * as hostsResults from './20261128010100_hosts_results.ts';
import * as notifierClock from './20261128030000_notifier_clock.ts';
import * as hostInstances from './20261201010000_host_instances.ts';
import * as outboxDeadLetter from './20261201020000_outbox_dead_letter.ts';
import * as retentionIndexes from './20261201030000_retention_indexes.ts';
import * as hostIdentities from './20261202010000_host_identities.ts';
import * as users from './20261203010000_users.ts';
import * as rolloutWaves from './20261204010000_rollout_waves.ts';
import * as hostReports from './20261205010000_host_reports.ts';
import * as cronJobs from './20261205020000_cron_jobs.ts';
import * as groupColumns from './20261206000000_group_columns.ts';
import * as deviceGroups from './20261206010000_device_groups.ts';
import * as hostPrunes from './20261206020000_host_prunes.ts';
import * as cronJobRunKey from './20261206020100_cron_job_run_key.ts';
import * as regions from './20261207010000_regions.ts';
import * as publishFailuresIndex from './20261208010000_publish_failures_index.ts';

/**
 * Every migration of the schema, by timestamped name `YYYYMMDDHHMMSS_what` (applied in name order;
 * one that lands late with an older name is still applied).
 */
export const migrations: Record<string, Migration> = {
  '20261128010000_apps_revisions_outbox': appsRevisionsOutbox,
  '20261128010100_hosts_results': hostsResults,
  '20261128030000_notifier_clock': notifierClock,
  '20261201010000_host_instances': hostInstances,
  '20261201020000_outbox_dead_letter': outboxDeadLetter,
  '20261201030000_retention_indexes': retentionIndexes,
  '20261202010000_host_identities': hostIdentities,
  '20261203010000_users': users,
  '20261204010000_rollout_waves': rolloutWaves,
  '20261205010000_host_reports': hostReports,
  '20261205020000_cron_jobs': cronJobs,
  '20261206000000_group_columns': groupColumns,
  '20261206010000_device_groups': deviceGroups,
  '20261206020000_host_prunes': hostPrunes,
  '20261206020100_cron_job_run_key': cronJobRunKey,
  '20261207010000_regions': regions,
  '20261208010000_publish_failures_index': publishFailuresIndex,
};
