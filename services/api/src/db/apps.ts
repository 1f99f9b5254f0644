import type { AppConfig } from '@nebula/contracts';
import {
  type ChangeResult,
  ChangeTooLargeError,
  changeAppIn,
  type Database,
  type ChangeOptions as DbChangeOptions,
  changeApp as dbChangeApp,
  createApp as dbCreateApp,
  type Kysely,
  LiveAppExistsError,
  LiveAppNotFoundError,
  type Planner,
} from '@nebula/db';
import { AppExistsError, AppNotFoundError, InDeviceGroupsError, MessageTooLargeError } from '../errors.ts';
import { publishedSize } from '../publisher.ts';
import { groupsNaming, lockGroupMembership } from './device-groups.ts';

/**
 * The API's side of the change code, which lives in @nebula/db (app-changes.ts) so that the
 * notifier's rollout controller makes its rollback revisions the same way. Here the data layer's
 * errors become the API's (with their status and JSON body), and the size check counts the headers
 * the publisher adds.
 */
export type Db = Kysely<Database>;

export {
  type AppState,
  type ChangeResult,
  findLiveApp,
  getLiveAppView,
  getRevisionConfig,
  listLiveAppNames,
  OUTBOX_CHANNEL,
  type Planner,
  type PublishFailure,
  type RevisionRow,
} from '@nebula/db';

export type ChangeOptions = Omit<DbChangeOptions, 'messageSize'>;

function withSize(opts: ChangeOptions): DbChangeOptions {
  return { ...opts, messageSize: publishedSize };
}

function apiError(err: unknown): unknown {
  if (err instanceof LiveAppNotFoundError) return new AppNotFoundError(err.app);
  if (err instanceof LiveAppExistsError) return new AppExistsError(err.app, { cause: err });
  if (err instanceof ChangeTooLargeError) return new MessageTooLargeError(err.app, err.sizeBytes, err.limitBytes);
  return err;
}

/** A new incarnation at revision 1; AppExistsError when a live app has the name. */
export async function createApp(db: Db, name: string, config: AppConfig, opts: ChangeOptions): Promise<ChangeResult> {
  try {
    return await dbCreateApp(db, name, config, withSize(opts));
  } catch (err) {
    throw apiError(err);
  }
}

/** The next revision of a live app (see @nebula/db changeApp); the planner's own errors pass as they are. */
export async function changeApp(db: Db, name: string, plan: Planner, opts: ChangeOptions): Promise<ChangeResult> {
  try {
    return await dbChangeApp(db, name, plan, withSize(opts));
  } catch (err) {
    throw apiError(err);
  }
}

/**
 * Delete: a last revision carrying the last config (so workers know what to remove), then gone.
 * Refused (InDeviceGroupsError, nothing written) while a live device group names the app: the
 * membership lock is taken before the app's row, as every group change takes it, so no group can
 * come to name the app between the check and the delete.
 */
export async function deleteApp(db: Db, name: string, opts: ChangeOptions): Promise<ChangeResult> {
  try {
    return await db.transaction().execute(async (trx) => {
      await lockGroupMembership(trx);
      return changeAppIn(
        trx,
        name,
        async (current, _state, t) => {
          const groups = await groupsNaming(t, 'apps', name);
          if (groups.length > 0) throw new InDeviceGroupsError('app', name, groups);
          return { action: 'delete', config: current };
        },
        withSize(opts),
      );
    });
  } catch (err) {
    throw apiError(err);
  }
}
