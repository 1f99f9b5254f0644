/**
 * Where each host's cell goes on the rollout grid's canvas (pure). Cells are squares with a gap,
 * as large as fits (between `min` and `max` pixels) so that every host is on the canvas without
 * scrolling when possible: 3 hosts get big cells with their icon, 10,000 get small ones.
 */
export interface GridLayout {
  columns: number;
  rows: number;
  /** Cell size in CSS pixels, gap included. */
  pitch: number;
  /** Drawn square, inside the pitch. */
  cell: number;
  width: number;
  height: number;
}

export function gridLayout(count: number, width: number, opts: { min?: number; max?: number; targetHeight?: number } = {}): GridLayout {
  const min = opts.min ?? 6;
  const max = opts.max ?? 40;
  const targetHeight = opts.targetHeight ?? 480;
  const w = Math.max(min, Math.floor(width));
  const n = Math.max(1, count);
  // The largest pitch whose grid fits the target height, within [min, max].
  let pitch = max;
  while (pitch > min && Math.ceil(n / Math.max(1, Math.floor(w / pitch))) * pitch > targetHeight) pitch--;
  const columns = Math.max(1, Math.floor(w / pitch));
  const rows = Math.ceil(count / columns);
  const gap = pitch >= 12 ? 2 : 1;
  return { columns, rows, pitch, cell: pitch - gap, width: columns * pitch, height: Math.max(1, rows) * pitch };
}

/** The index of the host under a point of the canvas (CSS pixels), or null in a gap or past the end. */
export function cellAt(layout: GridLayout, count: number, x: number, y: number): number | null {
  if (x < 0 || y < 0) return null;
  const col = Math.floor(x / layout.pitch);
  const row = Math.floor(y / layout.pitch);
  if (col >= layout.columns) return null;
  const i = row * layout.columns + col;
  return i < count ? i : null;
}

/** The cell the arrow keys move to from `i` (stays on the grid). */
export function moveCell(layout: GridLayout, count: number, i: number, key: string): number {
  const c = layout.columns;
  const next =
    key === 'ArrowRight'
      ? i + 1
      : key === 'ArrowLeft'
        ? i - 1
        : key === 'ArrowDown'
          ? i + c
          : key === 'ArrowUp'
            ? i - c
            : key === 'Home'
              ? 0
              : key === 'End'
                ? count - 1
                : i;
  return next >= 0 && next < count ? next : i;
}
