/** Runs `fn` over `items`, at most `limit` at a time; results in the items' order. */
export async function mapLimited<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  // One iterator shared by the workers: each takes the next item.
  const pending = items.entries();
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (const [i, item] of pending) out[i] = await fn(item);
    }),
  );
  return out;
}
