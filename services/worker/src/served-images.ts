import type { Logger } from '@nebula/service-kit';
import { imagesToRemove, noteImage, type SeenImage } from './planner/image-gc.ts';
import type { PruneOutcome, pruneHostImages } from './prune.ts';
import type { ContainerRuntime } from './runtime/container-runtime.ts';

export interface ServedImagesDeps {
  runtime: ContainerRuntime;
  log: Logger;
  /** Some app is applying a revision now. */
  busy: () => boolean;
  /** The image references served apps run now (their last applied `docker_image`): never removed. */
  current: () => string[];
  removeOldImages: boolean;
  callTimeoutMs: number;
  prune: typeof pruneHostImages;
}

/**
 * The images of the apps a host serves: per app, the images its containers ran on (oldest first, see
 * planner/image-gc.ts), what an apply leaves behind removed (but the previous image, for a rollback),
 * and a device group's prune. Removals wait for a quiet moment: an app in the middle of an apply may
 * be about to use an image it just pulled (`busy`).
 */
export class ServedImages {
  private readonly history = new Map<string, SeenImage[]>();
  /** A removal of old images was put off because an app was busy: the next reconcile tick does it. */
  pending = false;

  private readonly deps: ServedImagesDeps;

  constructor(deps: ServedImagesDeps) {
    this.deps = deps;
  }

  record(app: string, ref: string, containers: readonly { image?: string | undefined }[]): void {
    for (const id of new Set(containers.map((c) => c.image).filter((i): i is string => i !== undefined && i !== ''))) {
      this.history.set(app, noteImage(this.history.get(app) ?? [], { id, ref }));
    }
  }

  /** An app no longer served: its images are no longer kept for it (a prune may take them). */
  forget(app: string): void {
    this.history.delete(app);
  }

  private async protect(): Promise<string[]> {
    const ids: string[] = [];
    for (const image of this.deps.current()) {
      const info = await this.deps.runtime.imageInfo(image, { signal: AbortSignal.timeout(this.deps.callTimeoutMs) }).catch(() => null);
      if (info) ids.push(info.id);
    }
    return ids;
  }

  /** After a successful apply: images of served apps that nothing uses any more, but the previous one. */
  async removeOld(): Promise<void> {
    const { runtime, log, busy } = this.deps;
    if (!this.deps.removeOldImages) return;
    if (busy()) {
      this.pending = true;
      return;
    }
    this.pending = false;
    const protect = await this.protect();
    const local = await runtime.listImages();
    const doomed = imagesToRemove({ local, apps: [...this.history.values()], protect });
    for (const { id, refs } of doomed) {
      for (const ref of refs) {
        if (busy()) {
          this.pending = true;
          return;
        }
        try {
          if (await runtime.removeImage(ref)) log.info({ image: id, ref }, 'removed an image no served app uses any more');
        } catch (err) {
          log.warn({ image: id, ref, err }, 'could not remove an old image');
        }
      }
      // Forgotten either way: what is left of it (other tags, a container) is not ours to remove.
      for (const [app, h] of this.history)
        this.history.set(
          app,
          h.filter((x) => x.id !== id),
        );
    }
  }

  /**
   * A device group's prune: every local image no container uses, but the current and previous one
   * of each served app. Waits (polling every `pollMs`, up to `timeoutMs`) for no app to be applying.
   */
  async prune(opts: { pollMs: number; timeoutMs: number }): Promise<PruneOutcome> {
    const until = Date.now() + opts.timeoutMs;
    while (this.deps.busy() && Date.now() < until) await new Promise((r) => setTimeout(r, Math.max(10, opts.pollMs)));
    const out = await this.deps.prune(
      this.deps.runtime,
      { apps: [...this.history.values()], protect: await this.protect() },
      { callTimeoutMs: this.deps.callTimeoutMs },
    );
    const removed = new Set(out.images_removed);
    for (const [app, h] of this.history)
      this.history.set(
        app,
        h.filter((x) => !removed.has(x.id) && !removed.has(x.ref)),
      );
    return out;
  }
}
