import { type Consumer, type ConsumerMessages, JetStreamApiError, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import { groupConsumerName } from '@nebula/bus-auth';
import { type GroupMessage, type GroupResult, isLaterGroupMessage, MESSAGE_VERSION, type PruneReport, streams } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import { appSetChange, changesApps } from './app-set.ts';
import { consumeOneByOne } from './consume-loop.ts';
import type { CronScheduler } from './cron/cron-scheduler.ts';
import { errorText, WorkerError } from './errors.ts';
import { type GroupMessageGate, readNewestGroupMessage } from './message-gate.ts';
import type { PruneOutcome } from './prune.ts';
import { publishGroupResult, publishPruneReport } from './reporting.ts';

/**
 * A host following its device group (DEVICE_GROUP): its durable consumer on `groups.<g>` (made by
 * the control plane at join and renewal, never by the host), one message at a time.
 *
 *   fetch 1 ──▶ signature of the control plane? ──no──▶ not applied, term, counted (no result)
 *                 │
 *               decode ──invalid, or newer schema version──▶ term, logged (counted when newer)
 *                 │
 *                 ├─ older than what this host converged to, or a newer one waits ──▶ superseded result, ack
 *                 ├─ already reported (a redelivery after a lost ack) ──▶ ack
 *                 │
 *                 └─ converge to it:
 *                      apps = APP_NAME ∪ its apps (none when `deleted`); changed? ──▶ renewal for
 *                        that set (the control plane makes the consumers, grants the rights), then
 *                        reconnect so the new JWT's rights apply  [refused: the added apps fail;
 *                        unreachable: nak, tried again]
 *                      removed apps: runners stopped, containers removed; added apps: runners
 *                        started, their first convergence waited for
 *                      cron jobs handed to the scheduler; prune_id grown since this process saw
 *                        it: unused images pruned, a PruneReport
 *                      ──▶ one GroupResult (applied when every app of the group converged), ack
 *
 * Converging to a message twice does nothing the second time (a crash before the ack): the app set
 * is compared with what is served, not with the previous message.
 */
export interface GroupHost {
  /** APP_NAME: served whatever the group says. */
  readonly fixedApps: readonly string[];
  /** The apps served now, sorted. */
  served(): readonly string[];
  /** Asks the control plane for the consumers and rights of this app set (a renewal), then reconnects so they apply. */
  regrant(apps: readonly string[]): Promise<void>;
  /** Runners for these apps, each adopted (converged from its newest revision) before this resolves. */
  addApps(apps: readonly string[]): Promise<void>;
  /** Stops these apps' runners and removes the containers of every app not served (as at start). */
  dropApps(apps: readonly string[]): Promise<void>;
  /** How a served app stands: converged, or why not. */
  appStatus(app: string): { status: 'applied' | 'failed'; error: string | null };
  prune(): Promise<PruneOutcome>;
  /** Asks the control plane for the group consumer when it is missing (a renewal). */
  provisionConsumer(): Promise<void>;
}

export interface GroupFollowerDeps {
  hostId: string;
  group: string;
  hostKey: KeyPair;
  js: JetStreamClient;
  jsm: JetStreamManager;
  gate: GroupMessageGate;
  host: GroupHost;
  cron: CronScheduler;
  log: Logger;
  opts: { ackWaitMs: number; fetchExpiresMs: number; retryBaseMs: number; retryMaxMs: number };
}

type Position = Pick<GroupMessage, 'incarnation' | 'seq'>;
const same = (a: Position | null, b: Position) => a !== null && a.incarnation === b.incarnation && a.seq === b.seq;

export class GroupFollower {
  private readonly log: Logger;
  /** The message this host converged to (at start, or from the consumer). */
  private applied: GroupMessage | null = null;
  /** The message this process reported on last. */
  private reported: Position | null = null;
  /** The prune_id this process has seen (per incarnation): a prune runs when it grows. */
  private pruneSeen: { incarnation: number; prune_id: number } | null = null;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private batch: ConsumerMessages | null = null;
  private wake: (() => void) | null = null;

  private readonly deps: GroupFollowerDeps;

  constructor(deps: GroupFollowerDeps) {
    this.deps = deps;
    this.log = deps.log.child({ device_group: deps.group });
  }

  /** The message the worker converged to at start (null: the group has none yet): its prune_id counts as seen. */
  startedWith(msg: GroupMessage | null): void {
    this.applied = msg;
    if (msg !== null) this.pruneSeen = { incarnation: msg.incarnation, prune_id: msg.prune_id };
    if (msg === null) this.log.info(`waiting for device group ${this.deps.group}: it has no message yet (not created)`);
    else if (msg.deleted) this.log.info(`device group ${this.deps.group} is deleted: waiting for it to be created again`);
  }

  /** The newest message converged to (for heartbeats and tests). */
  current(): GroupMessage | null {
    return this.applied;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.batch?.close().catch(() => undefined);
    await this.loop;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  private async bind(): Promise<Consumer> {
    const name = groupConsumerName(this.deps.hostId, this.deps.group);
    try {
      return await this.deps.js.consumers.get(streams.groups.name, name);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === 10014)) throw err; // consumer not found
      this.log.warn({ consumer: name }, 'group consumer missing: asking the control plane for it');
      await this.deps.host.provisionConsumer();
      return await this.deps.js.consumers.get(streams.groups.name, name);
    }
  }

  private run(): Promise<void> {
    return consumeOneByOne({
      bind: () => this.bind(),
      handle: (m) => this.handle(m),
      stopping: () => this.stopping,
      onFetch: (batch) => {
        this.batch = batch;
      },
      fetchExpiresMs: this.deps.opts.fetchExpiresMs,
      backoffMs: (n) => this.backoff(n),
      sleep: (ms) => this.sleep(ms),
      log: this.log,
      failure: 'consuming the device group failed: retrying',
    });
  }

  private backoff(n: number): number {
    const base = Math.min(this.deps.opts.retryMaxMs, this.deps.opts.retryBaseMs * 2 ** Math.min(Math.max(0, n - 1), 16));
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  /** Handles one message to the end: acked, nak'd or terminated. Never throws. */
  async handle(m: JsMsg): Promise<void> {
    const { gate } = this.deps;
    if (!gate.accept({ subject: m.subject, data: m.data, headers: m.headers, seq: m.seq, via: 'consumer' })) {
      m.term(); // not the control plane's: never applied nor reported
      return;
    }
    let msg: GroupMessage;
    try {
      msg = gate.decode({ subject: m.subject, data: m.data, seq: m.seq });
      if (msg.device_group !== this.deps.group) throw new Error(`message of device group ${msg.device_group} on ${m.subject}`);
    } catch (err) {
      this.log.error({ err, subject: m.subject, seq: m.seq }, 'device group message not applied: terminated');
      m.term();
      return;
    }
    const log = this.log.child({ incarnation: msg.incarnation, seq: msg.seq });
    if (same(this.reported, msg)) {
      await m.ackAck().catch((err: unknown) => log.warn({ err }, 'ack not confirmed'));
      return;
    }
    const newest = m.info.pending > 0 ? await readNewestGroupMessage(this.deps.jsm, this.deps.group, gate).catch(() => null) : null;
    if ((this.applied !== null && isLaterGroupMessage(this.applied, msg)) || (newest !== null && isLaterGroupMessage(newest, msg))) {
      log.info('superseded by a later message of the group');
      await this.finish(m, msg, this.result(msg, 'superseded', null, []), log);
      return;
    }
    const keep = setInterval(() => m.working(), Math.max(100, this.deps.opts.ackWaitMs / 3));
    let result: GroupResult;
    try {
      result = await this.converge(msg, log);
    } catch (err) {
      clearInterval(keep);
      const delay = this.backoff(m.info.deliveryCount);
      log.warn({ err, delayMs: delay }, 'could not converge to the device group: will retry');
      m.nak(delay);
      return;
    }
    clearInterval(keep);
    await this.finish(m, msg, result, log);
  }

  /** Reports, then acks; when the report cannot be published, the message comes back (and converges again: a no-op). */
  private async finish(m: JsMsg, msg: GroupMessage, result: GroupResult, log: Logger): Promise<void> {
    try {
      await publishGroupResult(this.deps.js, this.deps.hostKey, result);
    } catch (err) {
      log.warn({ err }, 'could not publish the group result: the message will be handled again');
      m.nak(this.backoff(m.info.deliveryCount));
      return;
    }
    this.reported = { incarnation: msg.incarnation, seq: msg.seq };
    await m.ackAck().catch((err: unknown) => log.warn({ err }, 'ack not confirmed'));
  }

  /** Converges the host to the message; throws only what is worth trying again (the control plane unreachable). */
  private async converge(msg: GroupMessage, log: Logger): Promise<GroupResult> {
    const { host, cron, group } = this.deps;
    const change = appSetChange({ fixed: host.fixedApps, served: host.served(), group: msg.deleted ? [] : msg.apps });
    let refused: string | null = null;
    if (changesApps(change)) {
      try {
        await host.regrant(change.next);
      } catch (err) {
        // Only a refusal is final; anything else (the API or the bus unreachable) is tried again.
        if (!(err instanceof WorkerError) || err.retryable) throw err;
        // The join token does not allow an added app (or the host was revoked): the added apps
        // fail, the removed ones still go; the rights shrink at the next renewal.
        refused = errorText(err);
        log.error({ err, added: change.added }, 'the control plane refused the renewal for the new app set: the added apps are not served');
      }
    }
    const added = refused === null ? change.added : [];
    log.info({ added, removed: change.removed, deleted: msg.deleted }, 'converging to the device group');
    await host.dropApps(change.removed);
    await host.addApps(added);
    cron.update(group, msg.deleted ? [] : msg.cron_jobs);
    await this.maybePrune(msg, log);
    this.applied = msg;
    if (msg.deleted) log.info(`device group ${group} deleted: its apps and jobs are gone; waiting for it to be created again`);
    const apps = (msg.deleted ? [] : msg.apps).map((app) =>
      refused !== null && change.added.includes(app) ? { app, status: 'failed' as const, error: refused.slice(0, 4096) } : { app, ...host.appStatus(app) },
    );
    const failed = apps.filter((a) => a.status === 'failed');
    const error = failed.length === 0 ? null : failed.map((a) => `${a.app}: ${a.error ?? 'failed'}`).join('; ');
    return this.result(msg, failed.length === 0 ? 'applied' : 'failed', error, apps);
  }

  private async maybePrune(msg: GroupMessage, log: Logger): Promise<void> {
    const seen = this.pruneSeen;
    this.pruneSeen = { incarnation: msg.incarnation, prune_id: Math.max(msg.prune_id, seen?.incarnation === msg.incarnation ? seen.prune_id : 0) };
    // The first message this process sees sets the prune_id: a worker restart never prunes.
    if (seen === null || seen.incarnation !== msg.incarnation || msg.prune_id <= seen.prune_id) return;
    let report: PruneReport;
    const at = () => new Date().toISOString();
    try {
      const out = await this.deps.host.prune();
      log.info({ prune_id: msg.prune_id, bytes_freed: out.bytes_freed, images: out.images_removed.length }, 'pruned unused images');
      report = { v: MESSAGE_VERSION, host: this.deps.hostId, device_group: this.deps.group, prune_id: msg.prune_id, ...out, error: null, at: at() };
    } catch (err) {
      log.warn({ err, prune_id: msg.prune_id }, 'prune failed');
      const error = errorText(err).slice(0, 4096);
      report = {
        v: MESSAGE_VERSION,
        host: this.deps.hostId,
        device_group: this.deps.group,
        prune_id: msg.prune_id,
        bytes_freed: 0,
        images_removed: [],
        error,
        at: at(),
      };
    }
    await publishPruneReport(this.deps.js, this.deps.hostKey, report).catch((err: unknown) => log.warn({ err }, 'could not publish the prune report'));
  }

  private result(msg: GroupMessage, status: GroupResult['status'], error: string | null, apps: GroupResult['apps']): GroupResult {
    return {
      v: MESSAGE_VERSION,
      device_group: msg.device_group,
      host: this.deps.hostId,
      incarnation: msg.incarnation,
      seq: msg.seq,
      device_group_id: msg.device_group_id,
      rollout_id: msg.rollout_id,
      status,
      error: error === null ? null : error.slice(0, 8192),
      apps,
      at: new Date().toISOString(),
    };
  }
}
