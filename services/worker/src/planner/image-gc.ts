/**
 * Which local images to remove after an apply: pure, property-tested (image-gc.test.ts).
 *
 * Per app the worker remembers the images its containers ran on, oldest first, each with the
 * reference the app named it by (`noteImage`). The last two of each app (current, and previous for
 * a rollback) are kept, so is every image a container uses (running or not) and every image in
 * `protect` (what served apps' tags resolve to now). Of the rest, only images the worker saw an app
 * use are candidates, and of those only the references an app used are removed (an image also tagged
 * otherwise keeps its other tags, and so stays); an image without any tag left (its tag moved on to
 * a newer push) goes by id. Images it knows nothing about are never touched.
 */
import { byCodeUnit } from '../text-order.ts';

export interface LocalImage {
  id: string;
  /** `repo:tag` references pointing at it now; empty when dangling. */
  tags: readonly string[];
  /** Used by at least one container on the engine, ours or not, in any state. */
  inUse: boolean;
}

export interface SeenImage {
  id: string;
  /** The app's `docker_image` when its containers ran on this image. */
  ref: string;
}

/** The history with this image moved to (or added at) its end: the app's current image. */
export function noteImage(history: readonly SeenImage[], seen: SeenImage): SeenImage[] {
  return [...history.filter((x) => x.id !== seen.id), seen];
}

/** How many of an app's most recent images are kept: the current one and the previous one. */
export const KEPT_PER_APP = 2;

export interface ImageRemoval {
  id: string;
  /** What to remove, in order: the app's tags on it, or its id when it has no tag at all. */
  refs: string[];
}

export function imagesToRemove(input: { local: readonly LocalImage[]; apps: readonly (readonly SeenImage[])[]; protect?: readonly string[] }): ImageRemoval[] {
  const keep = new Set<string>(input.protect ?? []);
  const candidates = new Map<string, Set<string>>();
  for (const history of input.apps) {
    const cut = Math.max(0, history.length - KEPT_PER_APP);
    for (const s of history.slice(cut)) keep.add(s.id);
    for (const s of history.slice(0, cut)) candidates.set(s.id, (candidates.get(s.id) ?? new Set()).add(s.ref));
  }
  const out: ImageRemoval[] = [];
  for (const img of input.local) {
    const refs = candidates.get(img.id);
    if (refs === undefined || img.inUse || keep.has(img.id) || out.some((o) => o.id === img.id)) continue;
    const mine = img.tags.filter((t) => refs.has(t)).sort();
    if (img.tags.length === 0) out.push({ id: img.id, refs: [img.id] });
    else if (mine.length > 0) out.push({ id: img.id, refs: mine });
  }
  return out.sort((a, b) => byCodeUnit(a.id, b.id));
}

/**
 * What a device group's prune removes (pure, property-tested in image-gc.test.ts). Wider than
 * `imagesToRemove`, on purpose: the operator asked for the disk back, so every local image no
 * container uses goes (ours or not, seen used or not, dangling or tagged), except the last two
 * images of each served app (current, and previous for a rollback) and `protect`. An image goes by
 * all its tags (the engine deletes it with its last one; by id it refuses an image with several);
 * one without a tag goes by id.
 */
export function imagesToPrune(input: { local: readonly LocalImage[]; apps: readonly (readonly SeenImage[])[]; protect?: readonly string[] }): ImageRemoval[] {
  const keep = new Set<string>(input.protect ?? []);
  for (const history of input.apps) for (const s of history.slice(-KEPT_PER_APP)) keep.add(s.id);
  for (const img of input.local) if (img.inUse) keep.add(img.id);
  const out = new Map<string, ImageRemoval>();
  for (const img of input.local) {
    if (keep.has(img.id) || out.has(img.id)) continue;
    out.set(img.id, { id: img.id, refs: img.tags.length === 0 ? [img.id] : [...new Set(img.tags)].sort(byCodeUnit) });
  }
  return [...out.values()].sort((a, b) => byCodeUnit(a.id, b.id));
}
