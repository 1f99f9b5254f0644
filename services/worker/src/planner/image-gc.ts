/**
 * Which local images to remove after an apply: pure, property-tested (image-gc.test.ts).
 *
 * Per app the worker remembers the image ids its containers ran on, oldest first (`noteImage`).
 * The last two of each app (current, and previous for a rollback) are kept, so is every image a
 * container uses (running or not) and every image in `protect` (what served apps' tags resolve to
 * now). Of the rest, only images the worker saw an app use are candidates: images it knows nothing
 * about (pulled by hand, other tools', from before it started) are never touched.
 */

export interface LocalImage {
  id: string;
  /** Used by at least one container on the engine, ours or not, in any state. */
  inUse: boolean;
}

/** The history with `id` moved to (or added at) its end: the app's current image. */
export function noteImage(history: readonly string[], id: string): string[] {
  return [...history.filter((x) => x !== id), id];
}

/** How many of an app's most recent images are kept: the current one and the previous one. */
export const KEPT_PER_APP = 2;

export function imagesToRemove(input: { local: readonly LocalImage[]; apps: readonly (readonly string[])[]; protect?: readonly string[] }): string[] {
  const keep = new Set<string>(input.protect ?? []);
  const candidates = new Set<string>();
  for (const history of input.apps) {
    const cut = Math.max(0, history.length - KEPT_PER_APP);
    history.slice(cut).forEach((id) => keep.add(id));
    history.slice(0, cut).forEach((id) => candidates.add(id));
  }
  const out = new Set<string>();
  for (const img of input.local) {
    if (img.inUse || keep.has(img.id) || !candidates.has(img.id)) continue;
    out.add(img.id);
  }
  return [...out].sort();
}
