import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KeyPair } from '@nats-io/nkeys';
import type { AppMessage } from '@nebula/contracts';
import type { Logger } from '@nebula/service-kit';
import type { Adoption } from './adoption.ts';
import { AppRunner, type AppState, type RunnerOptions } from './app-runner.ts';
import type { ConvergeContext } from './converge.ts';
import type { AppMessageGate } from './message-gate.ts';
import type { Reconciler } from './reconciler.ts';
import type { ServedImages } from './served-images.ts';
import { byCodeUnit } from './text-order.ts';
import type { UnservedContainers } from './unserved-containers.ts';

export interface ServingSetDeps {
  hostId: string;
  hostKey: KeyPair;
  gate: AppMessageGate;
  /** Asks the control plane for this host's consumers (a runner's is missing). */
  provision: () => Promise<void>;
  /** Known once the worker has started (runners are made from then on). */
  js: () => JetStreamClient;
  jsm: () => JetStreamManager;
  ctx: ConvergeContext;
  opts: RunnerOptions;
  log: Logger;
  adoption: Pick<Adoption, 'adopt' | 'error' | 'clear'>;
  reconciler: Pick<Reconciler, 'track' | 'forget'>;
  images: Pick<ServedImages, 'record' | 'removeOld' | 'forget'>;
  unserved: Pick<UnservedContainers, 'remove'>;
  /** The worker is running: an app added now starts consuming at once. */
  running: () => boolean;
}

/**
 * The apps this host serves now (APP_NAME, and the device group's once its message is read) and a
 * runner for each. An app added gets a runner, the reconciler's turns and an adoption; one dropped
 * has its runner stopped, everything kept for it forgotten, and its containers removed.
 */
export class ServingSet {
  private apps: string[];
  private readonly runners = new Map<string, AppRunner>();
  private readonly deps: ServingSetDeps;

  constructor(deps: ServingSetDeps, apps: readonly string[]) {
    this.deps = deps;
    this.apps = [...apps];
  }

  /** The apps served now. */
  served(): readonly string[] {
    return this.apps;
  }

  /** At start, before any runner is made: the apps to serve (the device group's granted). */
  serve(apps: readonly string[]): void {
    this.apps = [...apps];
  }

  runner(app: string): AppRunner | undefined {
    return this.runners.get(app);
  }

  all(): IterableIterator<AppRunner> {
    return this.runners.values();
  }

  /** The revision each served app runs (null: none yet). */
  applied(app: string): AppState['applied'] {
    return this.runners.get(app)?.state.applied ?? null;
  }

  /** Some app is applying a revision now. */
  busy(): boolean {
    return [...this.runners.values()].some((r) => r.state.busy);
  }

  /** The images the served apps run now (their last applied `docker_image`). */
  currentImages(): string[] {
    return [...this.runners.values()].flatMap((r) => (r.state.lastApplied === null ? [] : [r.state.lastApplied.config.docker_image]));
  }

  /** At start: a runner for each served app, each adopted (one failing never stops the others). */
  async open(): Promise<void> {
    for (const app of this.apps) this.addRunner(app);
    await Promise.all([...this.runners.values()].map((r) => this.deps.adoption.adopt(r)));
  }

  startAll(): void {
    for (const r of this.runners.values()) r.start();
  }

  /** Each runner's message in hand finished, its consumer left. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
  }

  /** Runners for these apps, each adopted (converged from its newest revision) before this resolves. */
  async add(apps: readonly string[]): Promise<void> {
    const added = apps.filter((a) => !this.runners.has(a)).map((a) => this.addRunner(a));
    this.apps = [...new Set([...this.apps, ...apps])].sort(byCodeUnit);
    // The first convergence of each added app is what the group result waits for.
    await Promise.all(added.map((r) => this.deps.adoption.adopt(r)));
    if (this.deps.running()) for (const r of added) r.start();
  }

  /** Stops these apps' runners and removes the containers of every app not served (as at start). */
  async drop(apps: readonly string[]): Promise<void> {
    const { adoption, reconciler, images, unserved } = this.deps;
    const gone = new Set(apps);
    this.apps = this.apps.filter((a) => !gone.has(a));
    await Promise.all(
      apps.map(async (app) => {
        await this.runners.get(app)?.stop();
        this.runners.delete(app);
        reconciler.forget(app);
        adoption.clear(app);
        images.forget(app);
      }),
    );
    await unserved.remove();
  }

  /** How a served app stands: converged, or why not. */
  status(app: string): { status: 'applied' | 'failed'; error: string | null } {
    const error = this.deps.adoption.error(app);
    if (!this.runners.has(app)) return { status: 'failed', error: 'not served by this host' };
    return error === undefined ? { status: 'applied', error: null } : { status: 'failed', error };
  }

  private addRunner(app: string): AppRunner {
    const { hostId, hostKey, gate, provision, ctx, opts, log, adoption, images } = this.deps;
    const onApplied = (msg: AppMessage, containers: readonly { image?: string | undefined }[]) => {
      adoption.clear(msg.app);
      images.record(msg.app, msg.config.docker_image, containers);
      void images.removeOld().catch((err: unknown) => log.warn({ err }, 'could not remove old images'));
    };
    const runner = new AppRunner({ app, hostId, hostKey, gate, provision, js: this.deps.js(), jsm: this.deps.jsm(), ctx, opts, log, onApplied });
    this.runners.set(app, runner);
    this.deps.reconciler.track(app);
    return runner;
  }
}
