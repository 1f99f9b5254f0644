import { randomUUID } from 'node:crypto';
import { type AppAction, type AppConfig, type AppMessage, appConfigSchema, appMessageId, appMessageSchema, subjects, wireConfig } from '@nebula/contracts';
import { type Database, type Kysely, onlineSql, sql, type Transaction } from '@nebula/db';
import type { PlannedChange } from '../changes.ts';
import { AppExistsError, AppNotFoundError, MessageTooLargeError } from '../errors.ts';
import { publishedSize } from '../publisher.ts';
import { republishedMsgId } from './republish.ts';

/**
 * Apps and their revisions. Every change runs in one transaction that writes the revision, its
 * rollout and the outbox row the relay publishes (and wakes the relay with NOTIFY on commit):
 *
 *   lock the live app row (or insert a new incarnation)
 *     -> plan the next config (pure, ../changes.ts)
 *     -> apps row (revision + 1) -> app_revisions -> rollouts (expected hosts) -> outbox -> NOTIFY
 *
 * Changes of one app are serialised by the row lock (create by the unique index on live names), so
 * their outbox ids grow in commit order: the relay, publishing each app's rows in id order, keeps
 * per-app order. A change whose message NATS would refuse (over max_payload) throws before the
 * outbox insert, so the whole transaction rolls back.
 */
export type Db = Kysely<Database>;
type Q = Kysely<Database> | Transaction<Database>;

export const OUTBOX_CHANNEL = 'nebula_outbox';

export interface AppState {
  incarnation: number;
  name: string;
  revision: number;
  config: AppConfig;
  rolloutId: string;
  updatedAt: Date;
}

export interface ChangeResult {
  app: AppState;
  action: AppAction;
  rolloutId: string;
  expectedHosts: string[];
}

export interface ChangeOptions {
  actor: string;
  /** A host is expected to apply a rollout while it has missed fewer heartbeats than this. */
  offlineAfterMissedHeartbeats: number;
  /** The NATS server's max_payload: a larger message is refused (MessageTooLargeError). */
  maxMessageBytes?: number | undefined;
}

/** Stored configs were validated on the way in; parsing again guards against hand-edited rows. */
function toConfig(raw: unknown): AppConfig {
  return appConfigSchema.parse(raw);
}

export async function listLiveAppNames(db: Q): Promise<string[]> {
  const rows = await db.selectFrom('apps').select('name').where('deleted_at', 'is', null).orderBy('name').execute();
  return rows.map((r) => r.name);
}

export async function findLiveApp(db: Q, name: string): Promise<AppState | null> {
  const row = await db
    .selectFrom('apps')
    .innerJoin('app_revisions', (j) => j.onRef('app_revisions.incarnation', '=', 'apps.incarnation').onRef('app_revisions.revision', '=', 'apps.revision'))
    .select(['apps.incarnation', 'apps.name', 'apps.revision', 'apps.config', 'apps.updated_at', 'app_revisions.rollout_id'])
    .where('apps.name', '=', name)
    .where('apps.deleted_at', 'is', null)
    .executeTakeFirst();
  if (!row) return null;
  return {
    incarnation: Number(row.incarnation),
    name: row.name,
    revision: row.revision,
    config: toConfig(row.config),
    rolloutId: row.rollout_id,
    updatedAt: row.updated_at,
  };
}

async function lockLiveApp(trx: Transaction<Database>, name: string) {
  return trx
    .selectFrom('apps')
    .select(['incarnation', 'revision', 'config'])
    .where('name', '=', name)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
}

async function expectedHosts(trx: Transaction<Database>, app: string, missed: number): Promise<string[]> {
  const rows = await trx
    .selectFrom('hosts')
    .select('id')
    .where(sql<boolean>`${app} = any(apps)`)
    .where(onlineSql('hosts', { n: missed })) // judged by the database's clock, like every reader
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

/** The revision row, its rollout and its outbox message, plus the wake-up for the relay. */
async function record(trx: Transaction<Database>, name: string, incarnation: number, revision: number, change: PlannedChange, opts: ChangeOptions) {
  const rolloutId = randomUUID();
  const rev = await trx
    .insertInto('app_revisions')
    .values({
      incarnation: String(incarnation),
      revision,
      action: change.action,
      config: JSON.stringify(change.config),
      actor: opts.actor,
      rollout_id: rolloutId,
    })
    .returning('created_at')
    .executeTakeFirstOrThrow();
  const hosts = await expectedHosts(trx, name, opts.offlineAfterMissedHeartbeats);
  await trx
    .insertInto('rollouts')
    .values({ id: rolloutId, app: name, incarnation: String(incarnation), revision, action: change.action, expected_hosts: hosts })
    .execute();
  // The envelope is checked before it is stored: what workers receive is always valid.
  const message: AppMessage = appMessageSchema.parse({
    v: 1,
    app: name,
    incarnation,
    revision,
    action: change.action,
    config: change.config,
    rollout_id: rolloutId,
    created_at: rev.created_at.toISOString(),
    actor: opts.actor,
  });
  const msgId = appMessageId(message);
  const payload = JSON.stringify({ ...message, config: wireConfig(message.config) });
  if (opts.maxMessageBytes !== undefined) {
    // Under the longest id it may go out with: put back in the stream after a loss, it must fit too.
    const size = publishedSize(Buffer.byteLength(payload), republishedMsgId(msgId));
    if (size > opts.maxMessageBytes) throw new MessageTooLargeError(name, size, opts.maxMessageBytes);
  }
  await trx
    .insertInto('outbox')
    .values({ subject: subjects.app(name), msg_id: msgId, payload })
    .execute();
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(trx);
  return { rolloutId, hosts, createdAt: rev.created_at };
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

/** A new incarnation at revision 1; AppExistsError when a live app has the name. */
export async function createApp(db: Db, name: string, config: AppConfig, opts: ChangeOptions): Promise<ChangeResult> {
  try {
    return await db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('apps')
        .values({ name, revision: 1, config: JSON.stringify(config) })
        .returning(['incarnation', 'updated_at'])
        .executeTakeFirstOrThrow();
      const incarnation = Number(row.incarnation);
      const r = await record(trx, name, incarnation, 1, { action: 'create', config }, opts);
      return {
        app: { incarnation, name, revision: 1, config, rolloutId: r.rolloutId, updatedAt: row.updated_at },
        action: 'create' as const,
        rolloutId: r.rolloutId,
        expectedHosts: r.hosts,
      };
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppExistsError(name, { cause: err });
    throw err;
  }
}

/**
 * The next revision of a live app: `plan` gets the current config under the row lock and returns the
 * new one (or throws a domain error, which rolls everything back).
 */
export type Planner = (
  current: AppConfig,
  state: { incarnation: number; revision: number },
  trx: Transaction<Database>,
) => PlannedChange | Promise<PlannedChange>;

export async function changeApp(db: Db, name: string, plan: Planner, opts: ChangeOptions): Promise<ChangeResult> {
  return db.transaction().execute(async (trx) => {
    const row = await lockLiveApp(trx, name);
    if (!row) throw new AppNotFoundError(name);
    const incarnation = Number(row.incarnation);
    const change = await plan(toConfig(row.config), { incarnation, revision: row.revision }, trx);
    const revision = row.revision + 1;
    const updated = await trx
      .updateTable('apps')
      .set({
        revision,
        config: JSON.stringify(change.config),
        updated_at: sql<Date>`now()`,
        ...(change.action === 'delete' ? { deleted_at: sql<Date>`now()` } : {}),
      })
      .where('incarnation', '=', String(incarnation))
      .returning('updated_at')
      .executeTakeFirstOrThrow();
    const r = await record(trx, name, incarnation, revision, change, opts);
    return {
      app: { incarnation, name, revision, config: change.config, rolloutId: r.rolloutId, updatedAt: updated.updated_at },
      action: change.action,
      rolloutId: r.rolloutId,
      expectedHosts: r.hosts,
    };
  });
}

/** Delete: a last revision carrying the last config (so workers know what to remove), then gone. */
export function deleteApp(db: Db, name: string, opts: ChangeOptions): Promise<ChangeResult> {
  return changeApp(db, name, (current) => ({ action: 'delete', config: current }), opts);
}

export async function getRevisionConfig(db: Q, incarnation: number, revision: number): Promise<AppConfig | null> {
  const row = await db
    .selectFrom('app_revisions')
    .select('config')
    .where('incarnation', '=', String(incarnation))
    .where('revision', '=', revision)
    .executeTakeFirst();
  return row ? toConfig(row.config) : null;
}

export interface RevisionRow {
  revision: number;
  action: string;
  actor: string | null;
  rolloutId: string;
  createdAt: Date;
  config: AppConfig;
}

export interface PublishFailure {
  revision: number;
  rolloutId: string;
  error: string;
  failedAt: Date;
}

/** Revisions of an incarnation that could never be published (dead-lettered), newest first. */
export async function listPublishFailures(db: Q, incarnation: number, limit = 10): Promise<PublishFailure[]> {
  const rows = await db
    .selectFrom('rollouts')
    .select(['revision', 'id', 'publish_error', 'publish_failed_at'])
    .where('incarnation', '=', String(incarnation))
    .where('publish_error', 'is not', null)
    .orderBy('revision', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ revision: r.revision, rolloutId: r.id, error: r.publish_error ?? '', failedAt: r.publish_failed_at ?? new Date(0) }));
}
