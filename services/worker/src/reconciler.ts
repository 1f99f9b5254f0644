import type { JetStreamClient } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import type { Logger } from '@nebula/service-kit';
import type { Adoption } from './adoption.ts';
import type { AppRunner } from './app-runner.ts';
import { type ConvergeContext, convergeApp } from './converge.ts';
import { NewerMessageVersionError } from './errors.ts';
import { reconcileDelay } from './planner/backoff.ts';
import { type HostContext, planDrift } from './planner/plan-host.ts';
import { buildResult, publishResult } from './reporting.ts';
import type { ContainerRuntime } from './runtime/container-runtime.ts';

/** What a heartbeat says about the drift repaired for one app since the worker started. */
export interface RepairStats {
  repairs: number;
  last: { at: string; what: string } | null;
}

/** The lines joined with `; `, at most `max` characters: the first ones, then how many more. */
export function summarise(lines: readonly string[], max: number): string {
  let out = '';
  for (const [i, line] of lines.entries()) {
    const next = out === '' ? line : `${out}; ${line}`;
    const rest = lines.length - i - 1;
    if (next.length + (rest > 0 ? 16 : 0) > max)
      return out === '' ? `${line.slice(0, max - 16)}... (${lines.length} in all)` : `${out}; ... (${lines.length - i} more)`;
    out = next;
  }
  return out;
}

export interface ReconcilerDeps {
  hostId: string;
  hostKey: KeyPair;
  host: HostContext;
  runtime: ContainerRuntime;
  ctx: ConvergeContext;
  opts: { convergeTimeoutMs: number; reconcileIntervalMs: number; reconcileMaxBackoffMs: number };
  /** Known once the worker has started. */
  js: () => JetStreamClient;
  adoption: Pick<Adoption, 'now'>;
  /** The runners of the apps served now. */
  runners: () => Iterable<AppRunner>;
  log: Logger;
}

/** Per app: when its next reconcile is due, failures in a row, and whether its adoption is owed. */
interface Turn {
  dueAt: number;
  failures: number;
  adoptPending: boolean;
  stats: RepairStats;
}

/**
 * Each served app, every interval, in its runner's turn: its last applied revision planned again
 * against what the engine shows, and what drifted put back (or its failed adoption tried again).
 *
 *   due? ──no──▶ wait                 ok ──▶ next in one interval
 *    │                                failed ──▶ next in reconcileDelay (doubling, up to the max)
 *    └─ runner idle? ──no (a message is in hand: it converges the app anyway)──▶ skipped, due still
 */
export class Reconciler {
  private readonly turns = new Map<string, Turn>();
  private readonly deps: ReconcilerDeps;

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
  }

  /** A runner of the app was made: its first reconcile is one interval away. */
  track(app: string): void {
    this.turns.set(app, { dueAt: Date.now() + this.deps.opts.reconcileIntervalMs, failures: 0, adoptPending: false, stats: { repairs: 0, last: null } });
  }

  forget(app: string): void {
    this.turns.delete(app);
  }

  /** The app's adoption failed: its next reconcile tries it again. */
  oweAdoption(app: string): void {
    const r = this.turns.get(app);
    if (r) r.adoptPending = true;
  }

  /** Drift repaired for the app since start (undefined: not tracked). */
  stats(app: string): RepairStats | undefined {
    return this.turns.get(app)?.stats;
  }

  /** Drift repaired per app since start. */
  repairs(): Record<string, RepairStats> {
    return Object.fromEntries([...this.turns].map(([app, r]) => [app, { ...r.stats }]));
  }

  /**
   * Reconciles each app whose time has come and whose runner is idle; the next time is one interval
   * later, or later still after failures in a row (reconcileDelay).
   */
  async tick(now = Date.now()): Promise<void> {
    const { opts, log } = this.deps;
    await Promise.all(
      [...this.deps.runners()].map(async (runner) => {
        const r = this.turns.get(runner.app);
        if (r === undefined || now < r.dueAt) return;
        try {
          const done = await runner.whenIdle(() => this.reconcileApp(runner));
          if (done === 'skipped') return; // a message is being handled: it converges the app anyway
          r.failures = 0;
        } catch (err) {
          r.failures += 1;
          log.warn(
            { app: runner.app, err, failures: r.failures, nextInMs: reconcileDelay(opts.reconcileIntervalMs, r.failures, opts.reconcileMaxBackoffMs) },
            'reconcile failed',
          );
        }
        r.dueAt = now + reconcileDelay(opts.reconcileIntervalMs, r.failures, opts.reconcileMaxBackoffMs);
      }),
    );
  }

  /**
   * One reconcile of one app, in its runner's turn: the last applied revision planned again against
   * what the engine shows (planDrift), and what drifted put back; or the adoption that failed at
   * start tried again. Throws when it fails (the caller backs off).
   */
  private async reconcileApp(runner: AppRunner): Promise<void> {
    const { hostId, host, runtime, ctx, opts, log } = this.deps;
    const app = runner.app;
    const r = this.turns.get(app);
    if (r === undefined) return;
    const applied = runner.state.lastApplied;
    if (applied === null) {
      if (!r.adoptPending) return;
      const done = await this.deps.adoption.now(runner).catch((err: unknown) => {
        if (!(err instanceof NewerMessageVersionError)) throw err;
        log.error({ app, err }, `${err.message}: the app's containers are left as they are`);
        return null;
      });
      r.adoptPending = false;
      if (done === null) return;
      this.noteRepair(r.stats, app, [`adopted revision ${done.message.revision} after a failed start (${done.changed} changed)`]);
      if (done.base) return; // outside the wave: nothing to report
      // Its delivery may have been reported failed (and terminated): the newest result says applied.
      const { message, out } = done;
      await publishResult(
        this.deps.js(),
        this.deps.hostKey,
        buildResult({
          message,
          host: hostId,
          status: 'applied',
          imageDigest: out.imageDigest,
          containers: out.containers,
          pullMs: out.pullMs,
          applyMs: out.applyMs,
        }),
      )
        .then(() => {
          runner.state.reported = { incarnation: message.incarnation, revision: message.revision };
        })
        .catch((err: unknown) => log.warn({ app, err }, 'could not report the adopted revision'));
      return;
    }
    const drift = planDrift(applied, await runtime.listContainers(hostId, { signal: AbortSignal.timeout(opts.convergeTimeoutMs) }), host);
    if (drift.repairs.length === 0) return;
    log.warn({ app, revision: applied.revision, repairs: drift.repairs }, 'drift found: repairing');
    // Converging in adopt mode plans the same again and applies it (pulling only a missing image).
    await convergeApp(ctx, applied, { adopt: true, signal: AbortSignal.timeout(opts.convergeTimeoutMs) });
    this.noteRepair(r.stats, app, drift.repairs);
  }

  private noteRepair(stats: RepairStats, app: string, what: string[]): void {
    const at = new Date().toISOString();
    for (const w of what) this.deps.log.info({ app, repair: w }, 'repaired');
    stats.repairs += what.length;
    stats.last = { at, what: summarise(what, 1_000) };
  }
}
