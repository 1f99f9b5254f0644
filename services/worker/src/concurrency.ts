/**
 * Runs `fn` over `items` with at most `limit` calls in flight; resolves (or rejects) like
 * Promise.allSettled-then-throw: every started call finishes, then the first error is thrown.
 * No new call starts after one has failed, so a broken engine is not hit with the whole batch.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  const width = Math.max(1, Math.min(Math.floor(limit), items.length));
  let next = 0;
  let failed: { err: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (failed === null && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  if (failed !== null) throw (failed as { err: unknown }).err;
}
