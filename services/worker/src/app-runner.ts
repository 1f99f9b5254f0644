import { type Consumer, type ConsumerMessages, JetStreamApiError, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import { consumerName } from '@nebula/bus-auth';
import { type AppMessage, appMessageSchema, isNewer, streams, targetOf } from '@nebula/contracts';
import { InvalidMessageError } from '@nebula/messaging';
import type { Logger } from '@nebula/service-kit';
import { z } from 'zod';
import { consumeOneByOne } from './consume-loop.ts';
import { type ConvergeContext, convergeApp, policyRefusal } from './converge.ts';
import {
  ConvergeTimeoutError,
  EngineUnavailableError,
  errorText,
  isRetryable,
  NewerMessageVersionError,
  OperationAbortedError,
  SupersededError,
} from './errors.ts';
import { abortableSleep } from './executor.ts';
import { type AppMessageGate, readNewestRevision } from './message-gate.ts';
import { buildResult, publishResult } from './reporting.ts';
import { handlingOf, supersession } from './wave-handling.ts';

/**
 * One app on one host: its durable pull consumer on `apps.<app>` (made by the control plane: when it
 * is missing, the runner asks for it through `provision` and binds again) and a loop that handles one
 * message at a time (apps run in parallel, each in its own runner).
 *
 *   fetch 1 ──▶ signature of the control plane? ──no──▶ not applied, term, counted (no result)
 *                 │
 *               decode ──invalid, or of a newer schema version──▶ failed result, term
 *                 │          (no result when not even app and revision can be read: logged, counted)
 *                 │
 *                 ├─ a newer revision is waiting, or already applied ──▶ superseded result, ack
 *                 │                                         (outside its wave: no result)
 *                 ├─ a later wave of this revision waits, or it was applied and reported here
 *                 │    already (a later wave) ──▶ ack, no result
 *                 ├─ outside its wave ──▶ converge to the wave's base (adopt mode), ack, no result
 *                 │
 *                 └─ converge (working() while it runs, until its deadline)
 *                      ├─ ok ─────────▶ applied result, ack
 *                      ├─ stuck, and a newer revision waits ─▶ aborted: superseded result, ack
 *                      ├─ past the deadline ─▶ aborted: failed result naming what hung, nak
 *                      ├─ retryable ──▶ failed result (once per cause), nak(backoff)
 *                      │                (engine/registry unreachable; applied result once it works)
 *                      └─ permanent ──▶ failed result, term     (unknown image, port taken, refused
 *                                                                by the host's policy before any pull,
 *                                                                new containers that did not settle:
 *                                                                the previous ones put back...)
 *
 * stop(): no new fetch; the message in hand is finished (acked or nak'd) before it resolves.
 *
 * whenIdle(fn): the worker's reconcile runs here, never at the same time as a message is handled:
 * skipped while a message is in hand; a message that arrives meanwhile waits for it (kept ours).
 */
export interface RunnerOptions {
  /** The consumer's ack wait (the control plane sets it as asked at join/renew): working() is sent well within it. */
  ackWaitMs: number;
  fetchExpiresMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxRestartWaitSeconds: number;
  /** A convergence still running after this long is aborted (a failed, retryable result). */
  convergeTimeoutMs: number;
  /** A convergence without progress for this long gives way to a newer revision waiting. */
  stuckAfterMs: number;
}

export interface AppState {
  /**
   * The revision this host runs, as (incarnation, revision): the newest applied, or the base of the
   * wave it is outside of (what its heartbeats say).
   */
  applied: { incarnation: number; revision: number } | null;
  /** That revision itself (a base as an `update` of it), so that it can be planned again (drift repair). */
  lastApplied: AppMessage | null;
  /** The revision this process reported applied: a later message of it (a later wave) is acked quietly. */
  reported: { incarnation: number; revision: number } | null;
  busy: boolean;
}

/** Enough of a message to report on it when the whole does not parse. */
const reportableSchema = z.object({
  app: z.string(),
  incarnation: z.number().int().positive(),
  revision: z.number().int().positive(),
  rollout_id: z.string().min(1),
  action: appMessageSchema.shape.action,
});

const RESTARTING = new Set(['create', 'update', 'restart', 'roll', 'pull', 'rollback']);

export class AppRunner {
  readonly app: string;
  readonly state: AppState = { applied: null, lastApplied: null, reported: null, busy: false };
  private readonly hostId: string;
  private readonly hostKey: KeyPair;
  private readonly gate: AppMessageGate;
  private readonly provision: () => Promise<void>;
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly ctx: ConvergeContext;
  private readonly opts: RunnerOptions;
  private readonly log: Logger;
  private stopping = false;
  /** The revision and cause of the last retryable failure reported (see reportRetry). */
  private retryReported: string | null = null;
  private batch: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** Handling a message and reconciling take turns through this chain. */
  private turn: Promise<unknown> = Promise.resolve();
  /** A message is in hand (from decode to ack), whether or not it has its turn yet. */
  private inHand = false;
  /** Set by a successful apply; handed to onApplied once the message is finished and the turn over. */
  private justApplied: { msg: AppMessage; containers: readonly { image?: string | undefined }[] } | null = null;
  private readonly onApplied: (msg: AppMessage, containers: readonly { image?: string | undefined }[]) => void;

  constructor(args: {
    app: string;
    hostId: string;
    /** Signs this host's results. */
    hostKey: KeyPair;
    /** Decides whether a message from the APPS stream is the control plane's (its signature). */
    gate: AppMessageGate;
    /** Asks the control plane for this host's consumers (when this app's is missing). */
    provision: () => Promise<void>;
    js: JetStreamClient;
    jsm: JetStreamManager;
    ctx: ConvergeContext;
    opts: RunnerOptions;
    log: Logger;
    /** Called after each revision applied by a message (the worker removes replaced images). */
    onApplied?: (msg: AppMessage, containers: readonly { image?: string | undefined }[]) => void;
  }) {
    this.onApplied = args.onApplied ?? (() => undefined);
    this.app = args.app;
    this.hostId = args.hostId;
    this.hostKey = args.hostKey;
    this.gate = args.gate;
    this.provision = args.provision;
    this.js = args.js;
    this.jsm = args.jsm;
    this.ctx = args.ctx;
    this.opts = args.opts;
    this.log = args.log.child({ app: args.app });
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.batch?.close().catch(() => undefined);
    await this.loop;
    await this.turn; // a reconcile in progress finishes too
  }

  /** Runs `fn` after whatever has the turn now; one at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs `fn` (a reconcile) when no message is in hand, marked busy; returns `skipped` instead when
   * one is (the message converges the app anyway) or the runner is stopping.
   */
  async whenIdle<T>(fn: () => Promise<T>): Promise<T | 'skipped'> {
    if (this.inHand || this.state.busy || this.stopping) return 'skipped';
    return this.exclusive(async () => {
      this.state.busy = true;
      try {
        return await fn();
      } finally {
        this.state.busy = false;
      }
    });
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

  /**
   * Binds the app's consumer. A host never creates one: when it is missing (first start of an app,
   * forgotten after the inactivity threshold, deleted) the control plane is asked for it, then bound
   * again; a failure goes through the loop's backoff.
   */
  private async bind(): Promise<Consumer> {
    const name = consumerName(this.hostId, this.app);
    try {
      return await this.js.consumers.get(streams.apps.name, name);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === 10014)) throw err; // 10014: consumer not found
      this.log.warn({ consumer: name }, 'consumer missing: asking the control plane for it');
      await this.provision();
      const c = await this.js.consumers.get(streams.apps.name, name);
      this.log.info({ consumer: name }, 'consumer provisioned by the control plane');
      return c;
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
      fetchExpiresMs: this.opts.fetchExpiresMs,
      backoffMs: (n) => Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.min(n - 1, 10)),
      sleep: (ms) => this.sleep(ms),
      log: this.log,
      failure: 'consuming failed: retrying',
    });
  }

  /** The newest revision of the app in the stream, when other messages are waiting behind `m`. */
  private async newestWaiting(m: JsMsg): Promise<AppMessage | null> {
    if (m.info.pending === 0) return null;
    return this.newestInStream();
  }

  /** The newest revision of the app in the stream (null when none, unsigned, or it cannot be read now). */
  private async newestInStream(): Promise<AppMessage | null> {
    try {
      return await readNewestRevision(this.jsm, this.app, this.gate);
    } catch (err) {
      this.log.debug({ err }, 'could not read the newest revision');
      return null;
    }
  }

  private backoff(m: JsMsg): number {
    const n = Math.max(1, m.info.deliveryCount);
    const base = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.min(n - 1, 16));
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  /** Handles one message to the end: acked, nak'd or terminated. Never throws. */
  async handle(m: JsMsg): Promise<void> {
    this.inHand = true;
    // While a reconcile finishes, the message stays ours.
    const keep = setInterval(() => m.working(), Math.max(100, this.opts.ackWaitMs / 3));
    try {
      await this.exclusive(() => this.handleInTurn(m));
    } finally {
      clearInterval(keep);
      this.inHand = false;
    }
    const done = this.justApplied;
    this.justApplied = null;
    if (done !== null) {
      try {
        this.onApplied(done.msg, done.containers);
      } catch (err) {
        this.log.warn({ err }, 'after-apply hook failed');
      }
    }
  }

  private async handleInTurn(m: JsMsg): Promise<void> {
    if (!this.gate.accept({ subject: m.subject, data: m.data, headers: m.headers, seq: m.seq, via: 'consumer' })) {
      // Not the control plane's: never applied, never reported (a result would vouch for it), and
      // terminated so that it does not come back.
      m.term();
      return;
    }
    let msg: AppMessage;
    try {
      msg = this.gate.decode({ subject: m.subject, data: m.data, seq: m.seq });
      if (msg.app !== this.app) throw new InvalidMessageError(`message for app ${msg.app} on ${m.subject}`);
    } catch (err) {
      await this.reject(m, err);
      return;
    }
    const log = this.log.child({ incarnation: msg.incarnation, revision: msg.revision, action: msg.action, ...(msg.wave ? { wave: msg.wave.step } : {}) });
    const newest = await this.newestWaiting(m);
    const mine = targetOf(msg, this.hostId) === 'revision';
    const gone = supersession(msg, newest, this.state.applied);
    if (gone === 'superseded') {
      log.info({ newest: newest ? `${newest.incarnation}/${newest.revision}` : null }, 'superseded by a newer revision');
      // Reported only to a rollout this host is part of; outside its wave the host was never asked.
      if (mine) await this.finish(m, 'ack', buildResult({ message: msg, host: this.hostId, status: 'superseded' }), log);
      else await this.quietAck(m, log);
      return;
    }
    if (gone === 'later') {
      // A later wave of the same revision waits: it says all this one says, and more.
      log.info({ wave: newest?.wave?.step ?? 'final' }, 'a later wave of this revision waits: acked, the later one is handled');
      await this.quietAck(m, log);
      return;
    }
    const handling = handlingOf(msg, this.hostId, this.state);
    if (handling.kind === 'nothing') {
      log.info(handling.why);
      await this.quietAck(m, log);
      return;
    }
    // Outside the wave: the base, converged as at start (keep what matches, no forced pull, no
    // restart), never reported (this host is not part of the rollout yet).
    const quiet = handling.kind === 'base';
    const target = handling.target;
    if (quiet) log.info({ base: `${target.incarnation}/${target.revision}` }, "outside this wave: keeping the wave's base");
    this.state.busy = true;
    // The convergence's deadline and its abort: every runtime call and wait below listens to it.
    const ac = new AbortController();
    const deadline = setTimeout(
      () =>
        ac.abort(
          new ConvergeTimeoutError(
            `revision ${msg.incarnation}/${msg.revision} (${msg.action}) did not converge within ${this.opts.convergeTimeoutMs / 1000} s`,
          ),
        ),
      this.opts.convergeTimeoutMs,
    );
    let lastWorking = Date.now();
    let lastProgress = Date.now();
    const working = () => {
      lastProgress = Date.now();
      // Keeps the message ours while a long pull or roll runs (ack_wait restarts at each call).
      if (!ac.signal.aborted && Date.now() - lastWorking > this.opts.ackWaitMs / 4) {
        lastWorking = Date.now();
        m.working();
      }
    };
    let checking = false;
    const timer = setInterval(
      () => {
        // Extended only until the deadline: a stuck action must not hold its message forever.
        if (ac.signal.aborted) return;
        lastWorking = Date.now();
        m.working();
        if (checking || Date.now() - lastProgress < this.opts.stuckAfterMs) return;
        checking = true;
        void this.newestInStream()
          .then((newest) => {
            if (newest !== null && isNewer(newest, msg) && !ac.signal.aborted) {
              ac.abort(
                new SupersededError(
                  `revision ${newest.incarnation}/${newest.revision} is waiting and this one made no progress for ${Math.round((Date.now() - lastProgress) / 1000)} s`,
                ),
              );
            }
          })
          .finally(() => (checking = false));
      },
      Math.max(100, Math.min(this.opts.ackWaitMs / 3, this.opts.stuckAfterMs / 2)),
    );
    try {
      if (!quiet && this.opts.maxRestartWaitSeconds > 0 && RESTARTING.has(msg.action) && !m.info.redelivered && policyRefusal(this.ctx.policy, msg) === null) {
        // Spreads the restarts of a fleet over time, as the original did (a revision the host's
        // policy refuses restarts nothing: it is refused at once).
        await abortableSleep(Math.random() * this.opts.maxRestartWaitSeconds * 1000, ac.signal, 'the random wait before a restart');
      }
      const out = await convergeApp(this.ctx, target, { progress: working, signal: ac.signal, adopt: quiet });
      this.state.applied = { incarnation: target.incarnation, revision: target.revision };
      this.state.lastApplied = target;
      this.justApplied = { msg: target, containers: out.containers };
      if (quiet) {
        log.info({ ...out.outcome }, 'base kept');
        await this.quietAck(m, log);
        return;
      }
      log.info({ ...out.outcome, pullMs: Math.round(out.pullMs), applyMs: Math.round(out.applyMs) }, 'applied');
      const result = buildResult({
        message: msg,
        host: this.hostId,
        status: 'applied',
        imageDigest: out.imageDigest,
        containers: out.containers,
        pullMs: out.pullMs,
        applyMs: out.applyMs,
      });
      if (await this.finish(m, 'ack', result, log)) this.state.reported = { incarnation: msg.incarnation, revision: msg.revision };
    } catch (caught) {
      const why: unknown = ac.signal.aborted ? ac.signal.reason : null;
      if (why instanceof SupersededError) {
        log.warn({ err: caught, reason: why.message }, 'stuck: aborted for a newer revision');
        if (quiet) await this.quietAck(m, log);
        else await this.finish(m, 'ack', buildResult({ message: msg, host: this.hostId, status: 'superseded' }), log);
        return;
      }
      // Past the deadline: say what hung, not just that time ran out.
      const err =
        why instanceof ConvergeTimeoutError
          ? new ConvergeTimeoutError(`${why.message}: stuck in ${caught instanceof OperationAbortedError ? caught.interrupted : errorText(caught)}`, {
              cause: caught,
            })
          : caught;
      const failed = async (error: string) => {
        // An engine that did not answer would not answer the listing either: report without it
        // rather than wait out another deadline.
        const containers =
          err instanceof EngineUnavailableError
            ? []
            : await this.ctx.runtime
                .listContainers(this.hostId)
                .then((all) => all.filter((c) => c.labels['io.nebula.app'] === this.app))
                .catch(() => []);
        return buildResult({
          message: msg,
          host: this.hostId,
          status: 'failed',
          error,
          containers: containers.map((c) => ({ id: c.id, name: c.name, state: c.state, ...(c.health ? { health: c.health } : {}), image: c.imageId })),
        });
      };
      if (quiet) {
        // The base is not this host's part of the rollout: nothing is reported either way; the
        // reconcile keeps what was applied before.
        if (isRetryable(err)) {
          const delay = this.backoff(m);
          log.warn({ err, delayMs: delay }, "keeping the wave's base failed: will retry");
          m.nak(delay);
        } else {
          log.error({ err }, "keeping the wave's base failed");
          m.term();
        }
      } else if (isRetryable(err)) {
        const delay = this.backoff(m);
        log.warn({ err, delayMs: delay, deliveries: m.info.deliveryCount }, 'action failed: will retry');
        await this.reportRetry(msg, err, failed);
        m.nak(delay);
      } else {
        log.error({ err }, 'action failed');
        await this.finish(m, 'term', await failed(errorText(err)), log);
      }
    } finally {
      clearTimeout(deadline);
      clearInterval(timer);
      this.state.busy = false;
    }
  }

  /**
   * A revision this host cannot apply for now (engine or registry unreachable) is reported failed,
   * naming the cause, and tried again; the applied result that follows replaces it (the notifier
   * keeps the newest result per host). Reported once per revision and cause, not at every retry.
   */
  private async reportRetry(msg: AppMessage, err: unknown, failed: (error: string) => Promise<ReturnType<typeof buildResult>>): Promise<void> {
    const key = `${msg.incarnation}/${msg.revision}/${err instanceof Error ? err.name : 'error'}`;
    if (this.retryReported === key) return;
    try {
      await publishResult(this.js, this.hostKey, await failed(`${errorText(err)} (retrying)`));
      this.retryReported = key;
    } catch (e) {
      this.log.debug({ err: e }, 'could not report the failure: retrying anyway');
    }
  }

  /**
   * Reports, then acks or terminates; true once reported. When the report cannot be published, the
   * message comes back.
   */
  private async finish(m: JsMsg, how: 'ack' | 'term', result: ReturnType<typeof buildResult>, log: Logger): Promise<boolean> {
    try {
      await publishResult(this.js, this.hostKey, result);
    } catch (err) {
      log.warn({ err }, 'could not publish the result: the message will be handled again');
      m.nak(this.backoff(m));
      return false;
    }
    // No reason with +TERM: nats-server 2.9 takes "+TERM <reason>" for an unknown ack and delivers the
    // message again after every ack wait, forever. The reason is in the failed result and the log.
    if (how === 'term') m.term();
    else await m.ackAck().catch((err: unknown) => log.warn({ err }, 'ack not confirmed'));
    return true;
  }

  /** Acks without a result: a message this host has nothing to report on. */
  private async quietAck(m: JsMsg, log: Logger): Promise<void> {
    await m.ackAck().catch((err: unknown) => log.warn({ err }, 'ack not confirmed'));
  }

  private async reject(m: JsMsg, err: unknown): Promise<void> {
    if (err instanceof NewerMessageVersionError) this.log.error({ err, subject: m.subject, seq: m.seq }, `${err.message}: not applied, terminated`);
    else this.log.error({ err, subject: m.subject, seq: m.seq }, 'invalid message: terminated');
    let raw: unknown;
    try {
      raw = m.json();
    } catch {
      raw = null;
    }
    const partial = reportableSchema.safeParse(raw);
    if (partial.success && partial.data.app === this.app) {
      await this.finish(m, 'term', buildResult({ message: partial.data, host: this.hostId, status: 'failed', error: errorText(err) }), this.log);
    } else {
      m.term(); // no reason: see finish()
    }
  }
}
