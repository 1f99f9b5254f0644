import { imagesToPrune, type SeenImage } from './planner/image-gc.ts';
import type { ContainerRuntime } from './runtime/container-runtime.ts';

/** What a prune keeps besides the images containers use: the last two images of each served app, and what its tag resolves to now. */
export interface PruneInput {
  /** Per served app, the images its containers ran on, oldest first (the worker's image history). */
  apps: readonly (readonly SeenImage[])[];
  /** Image ids that stay whatever the history says (what served apps' `docker_image` resolves to now). */
  protect: readonly string[];
}

export interface PruneOutcome {
  /** The sum of the engine's sizes of the images removed (shared layers count in each image, as `docker images` shows). */
  bytes_freed: number;
  /** Ids of the images removed. */
  images_removed: string[];
}

export interface PruneOptions {
  /** The deadline of each engine call (the list, and each removal). */
  callTimeoutMs: number;
  /** Ends the prune between removals (the worker stopping); what was removed so far is still reported. */
  signal?: AbortSignal | undefined;
  /** Hears each reference that could not be removed (an engine error); the prune goes on with the others. */
  onError?: ((ref: string, err: unknown) => void) | undefined;
}

/**
 * A device group's prune on this host: removes every local image no container uses, except those
 * of the current and previous revision of each app the host serves (imagesToPrune decides).
 * Nothing is forced: an image a container started on meanwhile is refused by the engine and stays
 * (not counted). An image counts as removed when every reference it was removed by went.
 */
export async function pruneHostImages(runtime: ContainerRuntime, input: PruneInput, opts: PruneOptions): Promise<PruneOutcome> {
  const call = () => ({
    signal: opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.callTimeoutMs)]) : AbortSignal.timeout(opts.callTimeoutMs),
  });
  const local = await runtime.listImages(call());
  const size = new Map(local.map((i) => [i.id, i.size]));
  const out: PruneOutcome = { bytes_freed: 0, images_removed: [] };
  for (const { id, refs } of imagesToPrune({ local, apps: input.apps, protect: input.protect })) {
    if (opts.signal?.aborted) break;
    let gone = true;
    for (const ref of refs) {
      try {
        if (!(await runtime.removeImage(ref, call()))) gone = false;
      } catch (err) {
        gone = false;
        opts.onError?.(ref, err);
      }
      if (!gone) break;
    }
    if (gone) {
      out.images_removed.push(id);
      out.bytes_freed += size.get(id) ?? 0;
    }
  }
  return out;
}
