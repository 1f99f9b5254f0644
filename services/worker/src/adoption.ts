import type { JetStreamManager } from '@nats-io/jetstream';
import type { AppMessage } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import type { AppRunner } from './app-runner.ts';
import { type ConvergeContext, convergeApp } from './converge.ts';
import { errorText, HostPolicyError, NewerMessageVersionError } from './errors.ts';
import { type AppMessageGate, readNewestRevision } from './message-gate.ts';
import type { ServedImages } from './served-images.ts';
import { handlingOf } from './wave-handling.ts';

export interface AdoptionDeps {
  hostId: string;
  /** Known once the worker has started. */
  jsm: () => JetStreamManager;
  gate: AppMessageGate;
  ctx: ConvergeContext;
  convergeTimeoutMs: number;
  images: Pick<ServedImages, 'record'>;
  log: Logger;
  /** An adoption failed in a way worth trying again: the reconcile loop does. */
  retryLater(app: string): void;
}

/** What an adoption changed; `base`: the wave's base of a host outside the wave (never reported). */
export interface Adopted {
  message: AppMessage;
  out: Awaited<ReturnType<typeof convergeApp>>;
  changed: number;
  base: boolean;
}

/**
 * An app taken over as the streams and the engine show it, with no message in hand: at start, when
 * a device group adds it, and (after a failure) from the reconcile loop. It converges to the newest
 * revision of the app (for a host outside its wave, the wave's base) in adopt mode: what matches is
 * kept, what is stale replaced, what is missing created.
 */
export class Adoption {
  /** Per app: why its adoption failed (cleared once a revision is applied): what a group result says of it. */
  private readonly errors = new Map<string, string>();
  private readonly deps: AdoptionDeps;

  constructor(deps: AdoptionDeps) {
    this.deps = deps;
  }

  /** Why the app's adoption failed, while no revision of it has been applied since. */
  error(app: string): string | undefined {
    return this.errors.get(app);
  }

  /** A revision of the app was applied, or it is no longer served. */
  clear(app: string): void {
    this.errors.delete(app);
  }

  /**
   * Adopts the latest revision of the app (for a host outside its wave, the wave's base); returns
   * what it changed, and whether it was a base (never reported). Throws when it fails.
   */
  async now(runner: AppRunner): Promise<Adopted | null> {
    const { hostId, ctx, log } = this.deps;
    const app = runner.app;
    const latest = await readNewestRevision(this.deps.jsm(), app, this.deps.gate);
    if (latest === null) {
      log.info({ app }, 'no revision published yet');
      return null;
    }
    const handling = handlingOf(latest, hostId, { reported: null, applied: null });
    if (handling.kind === 'nothing') {
      log.info({ app, incarnation: latest.incarnation, revision: latest.revision }, handling.why);
      return null;
    }
    const target = handling.target;
    // The same deadline as a revision from the stream: a hung engine or registry cannot hold the start.
    const out = await convergeApp(ctx, target, { adopt: true, signal: AbortSignal.timeout(this.deps.convergeTimeoutMs) });
    runner.state.applied = { incarnation: target.incarnation, revision: target.revision };
    runner.state.lastApplied = target;
    this.errors.delete(app);
    this.deps.images.record(app, target.config.docker_image, out.containers);
    log.info(
      { app, incarnation: target.incarnation, revision: target.revision, ...(handling.kind === 'base' ? { baseOf: latest.revision } : {}), ...out.outcome },
      handling.kind === 'base' ? "adopted the wave's base (outside the wave)" : 'adopted',
    );
    return { message: target, out, changed: out.outcome.created + out.outcome.replaced + out.outcome.removed, base: handling.kind === 'base' };
  }

  /** As `now`, but a failure is kept (and logged), never thrown: one app never stops the others. */
  async adopt(runner: AppRunner): Promise<void> {
    const { log } = this.deps;
    try {
      await this.now(runner);
    } catch (err) {
      this.errors.set(runner.app, errorText(err));
      if (err instanceof HostPolicyError) {
        // The policy does not change while the worker runs: trying again would be refused again. The
        // app's containers stay as they are; a later revision that passes is applied as usual.
        log.error({ app: runner.app, err }, "adoption refused by this host's policy: the app's containers are left as they are");
        return;
      }
      if (err instanceof NewerMessageVersionError) {
        // This worker will not understand it later either; its consumer reports it failed.
        log.error({ app: runner.app, err }, `${err.message}: the app's containers are left as they are`);
        return;
      }
      // The consumer delivers the revision again if it is not acked yet, and the reconcile loop
      // tries the adoption again (the revision may have been acked in an earlier life).
      this.deps.retryLater(runner.app);
      log.warn({ app: runner.app, err }, 'adoption failed: the reconcile loop will try again');
    }
  }
}
