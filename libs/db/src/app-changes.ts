import { randomUUID } from 'node:crypto';
import { type AppAction, type AppConfig, appConfigSchema, hostOrder, planWaves, type RolloutStrategy, type WaveBase } from '@nebula/contracts';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from './database.ts';
import { prepared } from './prepared.ts';
import { onlineSql } from './query-input.ts';
import { buildAppMessage, envelopeOf, insertOutboxMessage, OUTBOX_CHANNEL, type RevisionEnvelope, republishedMsgId } from './rollout-messages.ts';
import { ACTIVE_ROLLOUT_STATES, lockRollout, startWaves, supersedeActiveRollouts } from './rollout-transitions.ts';

/**
 * Apps and their revisions: the change code the API and the notifier's rollout controller share. Every
 * change runs in one transaction that writes the revision, its rollout and the outbox row the relay
 * publishes (and wakes the relay with NOTIFY on commit):
 *
 *   lock the live app row (or insert a new incarnation)
 *     -> plan the next config (the caller's pure planner)
 *     -> apps row (revision + 1) -> app_revisions -> the app's active rollout aborted (superseded)
 *     -> rollouts (expected hosts; in waves: members, plan, wave 1 started) -> outbox -> NOTIFY
 *
 * The common change (a live app with no rollout going out, all at once) writes all of that after the
 * lock in one statement (`recordAllAtOnce`): a write is then four round trips (BEGIN, lock, the
 * statement, COMMIT), which is what bounds the writes to one app, serialised by its row lock.
 *
 * Changes of one app are serialised by the row lock (create by the unique index on live names), so
 * their outbox ids grow in commit order: the relay, publishing each app's rows in id order, keeps
 * per-app order. A change whose message NATS would refuse (over max_payload) throws before the
 * outbox insert, so the whole transaction rolls back. In waves, the message checked is the largest
 * one the rollout will send (its last wave, naming every member).
 *
 * Lock order, everywhere (changes, the controller, rollout commands): the app row, then its rollouts.
 */
type Q = Kysely<Database> | Transaction<Database>;

export interface AppState {
  incarnation: number;
  name: string;
  revision: number;
  config: AppConfig;
  rolloutId: string;
  updatedAt: Date;
}

export interface RevisionChange {
  action: AppAction;
  config: AppConfig;
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
  /** The NATS server's max_payload: a larger message is refused (ChangeTooLargeError). */
  maxMessageBytes?: number | undefined;
  /** Bytes a message takes on the wire with its headers (default: payload, id and a signature's worth). */
  messageSize?: ((payloadBytes: number, msgId: string) => number) | undefined;
  /** All at once whatever the config says (the controller's rollback revisions). */
  noWaves?: boolean | undefined;
  /** Why the revision was made, for history (a rollback by the controller). */
  reason?: string | undefined;
}

/** No live app of that name. */
export class LiveAppNotFoundError extends Error {
  override name = 'LiveAppNotFoundError';
  readonly retryable = false;
  readonly app: string;
  constructor(app: string) {
    super(`app "${app}" does not exist`);
    this.app = app;
  }
}

/** A live app has the name already. */
export class LiveAppExistsError extends Error {
  override name = 'LiveAppExistsError';
  readonly retryable = false;
  readonly app: string;
  constructor(app: string, options?: ErrorOptions) {
    super(`app "${app}" already exists`, options);
    this.app = app;
  }
}

/** The change's message would be over the NATS server's max_payload: nothing was written. */
export class ChangeTooLargeError extends Error {
  override name = 'ChangeTooLargeError';
  readonly retryable = false;
  readonly app: string;
  readonly sizeBytes: number;
  readonly limitBytes: number;
  constructor(app: string, sizeBytes: number, limitBytes: number) {
    super(`the message of this change to "${app}" would be ${sizeBytes} bytes, over the NATS server's max_payload of ${limitBytes} bytes`);
    this.app = app;
    this.sizeBytes = sizeBytes;
    this.limitBytes = limitBytes;
  }
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

/**
 * The live app row, locked, with the transaction's clock (`now()`, what every default of this
 * transaction writes) and whether the app has a rollout going out (which the change supersedes).
 */
async function lockLiveApp(trx: Transaction<Database>, name: string) {
  const q = trx
    .selectFrom('apps')
    .select([
      'incarnation',
      'revision',
      'config',
      sql<Date>`now()`.as('now'),
      sql<boolean>`exists (select 1 from rollouts r where r.app = apps.name and r.state in (${sql.join(ACTIVE_ROLLOUT_STATES.map((st) => sql.lit(st)))}))`.as(
        'active',
      ),
    ])
    .where('name', '=', name)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .compile();
  return (await trx.executeQuery(prepared(q))).rows[0];
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

/** The hosts serving `app`, online or not, whose credential is not revoked: the members of a rollout in waves. */
export async function rolloutMembers(db: Q, app: string): Promise<string[]> {
  const rows = await db
    .selectFrom('hosts as h')
    .select('h.id')
    .where(sql<boolean>`${app} = any(h.apps)`)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('host_credentials as c').select('c.host_id').whereRef('c.host_id', '=', 'h.id').where('c.revoked_at', 'is not', null))),
    )
    .execute();
  return hostOrder(
    app,
    rows.map((r) => r.id),
  );
}

/**
 * The base of a new rollout: the app's last good revision. That is the current revision, unless its
 * rollout went out in waves and did not succeed: then that rollout's own base.
 */
async function lastGoodRevision(trx: Transaction<Database>, incarnation: number, current: number | null): Promise<WaveBase | null> {
  if (current === null) return null;
  const row = await trx
    .selectFrom('app_revisions as v')
    .leftJoin('rollouts as r', 'r.id', 'v.rollout_id')
    .select(['v.rollout_id', 'v.config', 'r.state', 'r.base'])
    .where('v.incarnation', '=', String(incarnation))
    .where('v.revision', '=', current)
    .executeTakeFirst();
  if (!row) return null;
  if (row.state === null || row.state === undefined || row.state === 'succeeded') {
    return { incarnation, revision: current, rollout_id: row.rollout_id, config: toConfig(row.config) };
  }
  return (row.base ?? null) as WaveBase | null;
}

function defaultSize(payloadBytes: number, msgId: string): number {
  return payloadBytes + Buffer.byteLength(msgId) + 160;
}

/** How the change goes out: in waves by its config's strategy, or all at once (null). */
function strategyOf(change: RevisionChange, opts: ChangeOptions): RolloutStrategy | null {
  return opts.noWaves === true || change.action === 'delete' ? null : (change.config.rollout_strategy ?? null);
}

/** ChangeTooLargeError when NATS would refuse the message, under the longest id it may go out with (put back in the stream after a loss, it must fit too). */
function checkMessageSize(name: string, m: { payload: string; msgId: string }, opts: ChangeOptions): void {
  if (opts.maxMessageBytes === undefined) return;
  const size = (opts.messageSize ?? defaultSize)(Buffer.byteLength(m.payload), republishedMsgId(m.msgId));
  if (size > opts.maxMessageBytes) throw new ChangeTooLargeError(name, size, opts.maxMessageBytes);
}

/**
 * The common change, in one statement: the next revision of a live app with no rollout going out,
 * all at once. The apps row, the revision, its rollout with the expected hosts, the outbox row and
 * the relay's wake-up, as `record` writes them after the apps UPDATE, but one round trip under the
 * row lock instead of six, prepared. `now` is the transaction's clock: the revision's created_at (its
 * default) and so the message's, as `record` reads it back.
 */
async function recordAllAtOnce(
  trx: Transaction<Database>,
  c: { name: string; incarnation: number; revision: number; change: RevisionChange; opts: ChangeOptions; now: Date },
): Promise<{ rolloutId: string; hosts: string[] }> {
  const { name, revision, change, opts } = c;
  const incarnation = String(c.incarnation);
  const rolloutId = randomUUID();
  const m = buildAppMessage({
    app: name,
    incarnation: c.incarnation,
    revision,
    action: change.action,
    config: change.config,
    rolloutId,
    createdAt: c.now,
    actor: opts.actor,
  });
  checkMessageSize(name, m, opts);
  const config = JSON.stringify(change.config);
  const statement = sql<{ hosts: string[]; apps: number }>`
    with app_row as (
      update apps set revision = ${revision}, config = ${config}::jsonb, updated_at = now() ${change.action === 'delete' ? sql`, deleted_at = now()` : sql``}
       where incarnation = ${incarnation}::bigint
      returning incarnation
    ), revision_row as (
      insert into app_revisions (incarnation, revision, action, config, actor, rollout_id, reason)
      values (${incarnation}::bigint, ${revision}, ${change.action}, ${config}::jsonb, ${opts.actor}, ${rolloutId}::uuid, ${opts.reason ?? null})
    ), expected as (
      -- judged by the database's clock, like every reader
      select coalesce(array_agg(h.id order by h.id), '{}'::text[]) as ids
        from hosts h
       where ${name} = any(h.apps) and ${onlineSql('h', { n: opts.offlineAfterMissedHeartbeats })}
    ), rollout_row as (
      insert into rollouts (id, app, incarnation, revision, action, expected_hosts)
      select ${rolloutId}::uuid, ${name}, ${incarnation}::bigint, ${revision}, ${change.action}, e.ids from expected e
    ), outbox_row as (
      insert into outbox (subject, msg_id, payload) values (${m.subject}, ${m.msgId}, ${m.payload}::jsonb)
    )
    select e.ids as hosts, (select count(*) from app_row)::int as apps, pg_notify(${OUTBOX_CHANNEL}, '')::text as woken
      from expected e`;
  const row = (await trx.executeQuery(prepared(statement.compile(trx)))).rows[0];
  if (row?.apps !== 1) throw new Error(`app ${name} (incarnation ${incarnation}) vanished under its own row lock`);
  return { rolloutId, hosts: row.hosts };
}

/** The revision row, its rollout and its outbox message (the first wave's, in waves), plus the wake-up for the relay. */
async function record(
  trx: Transaction<Database>,
  name: string,
  incarnation: number,
  revision: number,
  change: RevisionChange,
  opts: ChangeOptions,
): Promise<{ rolloutId: string; hosts: string[] }> {
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
      reason: opts.reason ?? null,
    })
    .returning('created_at')
    .executeTakeFirstOrThrow();
  // One active rollout per app: this change supersedes the one going out (its waves stop).
  await supersedeActiveRollouts(trx, name, rolloutId);
  const hosts = await expectedHosts(trx, name, opts.offlineAfterMissedHeartbeats);
  const strategy = strategyOf(change, opts);
  const envelope: RevisionEnvelope = {
    app: name,
    incarnation,
    revision,
    action: change.action,
    config: change.config,
    rolloutId,
    createdAt: rev.created_at,
    actor: opts.actor,
  };
  const checkSize = (m: { payload: string; msgId: string }) => checkMessageSize(name, m, opts);

  const members = strategy === null ? [] : await rolloutMembers(trx, name);
  const plan = strategy === null ? [] : planWaves(name, members, strategy.waves);
  if (strategy === null || plan.length === 0) {
    // All at once (or in waves with no member yet: nothing to wait for, late joiners get it as usual).
    await trx
      .insertInto('rollouts')
      .values({
        id: rolloutId,
        app: name,
        incarnation: String(incarnation),
        revision,
        action: change.action,
        expected_hosts: hosts,
        ...(strategy === null
          ? {}
          : { strategy: JSON.stringify(strategy), state: 'succeeded', members: [], wave: 1, step: 0, state_changed_at: sql<Date>`now()` }),
      })
      .execute();
    const m = buildAppMessage(envelope);
    checkSize(m);
    await insertOutboxMessage(trx, m);
    return { rolloutId, hosts };
  }

  const base = await lastGoodRevision(trx, incarnation, revision > 1 ? revision - 1 : null);
  // The largest message it will send: the last wave, naming every member, at a step beyond any retry.
  checkSize(buildAppMessage(envelope, { step: 10_000, hosts: members, base }));
  await trx
    .insertInto('rollouts')
    .values({
      id: rolloutId,
      app: name,
      incarnation: String(incarnation),
      revision,
      action: change.action,
      expected_hosts: hosts,
      strategy: JSON.stringify(strategy),
      state: 'rolling',
      members,
      wave: 0,
      step: 0,
      base: base === null ? null : JSON.stringify(base),
      state_changed_at: sql<Date>`now()`,
    })
    .execute();
  await trx
    .insertInto('rollout_waves')
    .values(plan.map((w) => ({ rollout_id: rolloutId, wave: w.wave, percent: w.percent, hosts: w.hosts })))
    .execute();
  const locked = await lockRollout(trx, rolloutId);
  if (!locked) throw new Error(`rollout ${rolloutId} vanished within its own transaction`);
  await startWaves(trx, locked, 1, { offlineAfterMissedHeartbeats: opts.offlineAfterMissedHeartbeats, envelope });
  return { rolloutId, hosts };
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

/** A new incarnation at revision 1; LiveAppExistsError when a live app has the name. */
export async function createApp(db: Kysely<Database>, name: string, config: AppConfig, opts: ChangeOptions): Promise<ChangeResult> {
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
    if (isUniqueViolation(err)) throw new LiveAppExistsError(name, { cause: err });
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
) => RevisionChange | Promise<RevisionChange>;

export async function changeApp(db: Kysely<Database>, name: string, plan: Planner, opts: ChangeOptions): Promise<ChangeResult> {
  return db.transaction().execute((trx) => changeAppIn(trx, name, plan, opts));
}

/** `changeApp` within a transaction of the caller's (the controller's rollback, in the step that decided it). */
export async function changeAppIn(trx: Transaction<Database>, name: string, plan: Planner, opts: ChangeOptions): Promise<ChangeResult> {
  const row = await lockLiveApp(trx, name);
  if (!row) throw new LiveAppNotFoundError(name);
  const incarnation = Number(row.incarnation);
  const change = await plan(toConfig(row.config), { incarnation, revision: row.revision }, trx);
  const revision = row.revision + 1;
  const r =
    !row.active && strategyOf(change, opts) === null
      ? await recordAllAtOnce(trx, { name, incarnation, revision, change, opts, now: row.now })
      : await updateAndRecord(trx, name, incarnation, revision, change, opts);
  return {
    // updated_at is now(): the transaction's clock, read with the lock.
    app: { incarnation, name, revision, config: change.config, rolloutId: r.rolloutId, updatedAt: row.now },
    action: change.action,
    rolloutId: r.rolloutId,
    expectedHosts: r.hosts,
  };
}

/** Any other change: the apps row, then the statements of `record`. */
async function updateAndRecord(
  trx: Transaction<Database>,
  name: string,
  incarnation: number,
  revision: number,
  change: RevisionChange,
  opts: ChangeOptions,
): Promise<{ rolloutId: string; hosts: string[] }> {
  await trx
    .updateTable('apps')
    .set({
      revision,
      config: JSON.stringify(change.config),
      updated_at: sql<Date>`now()`,
      ...(change.action === 'delete' ? { deleted_at: sql<Date>`now()` } : {}),
    })
    .where('incarnation', '=', String(incarnation))
    .returning('incarnation')
    .executeTakeFirstOrThrow();
  return record(trx, name, incarnation, revision, change, opts);
}

/** Delete: a last revision carrying the last config (so workers know what to remove), then gone. */
export function deleteApp(db: Kysely<Database>, name: string, opts: ChangeOptions): Promise<ChangeResult> {
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
  /** Why it was made when no person made it (a rollback by the rollout controller names the rollout, failures and first errors). */
  reason: string | null;
}

/** A revision of an incarnation that could never be published (dead-lettered). */
export interface PublishFailure {
  revision: number;
  rolloutId: string;
  error: string;
  failedAt: Date;
}

export { envelopeOf };
