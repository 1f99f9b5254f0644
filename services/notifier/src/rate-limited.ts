/**
 * At most one call per key and interval; the calls skipped in between are counted and handed to
 * the next one. For warnings an outsider can cause at will (forged messages): the log must not become
 * the cheapest way to fill a disk.
 */
export function rateLimited(intervalMs: number, now: () => number = Date.now): (key: string, emit: (skipped: number) => void) => void {
  const last = new Map<string, { at: number; skipped: number }>();
  return (key, emit) => {
    const t = now();
    const e = last.get(key);
    if (e && t - e.at < intervalMs) {
      e.skipped += 1;
      return;
    }
    last.set(key, { at: t, skipped: 0 });
    emit(e?.skipped ?? 0);
  };
}
