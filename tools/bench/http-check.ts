/** Polls HTTP endpoints of the echo image until each answers with an expected env value. */
export async function answersWith(url: string, key: string, value: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { env?: Record<string, string> };
    return body.env?.[key] === value;
  } catch {
    return false;
  }
}

/**
 * Waits until `count` distinct endpoints from `urls()` answer with env[key] === value. `urls` is
 * called again on each round, since containers and their ports change during an update.
 */
export async function waitAllAnswer(urls: () => Promise<string[]>, count: number, key: string, value: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await urls().catch(() => []);
    if (list.length >= count) {
      const ok = await Promise.all(list.map((u) => answersWith(u, key, value)));
      if (ok.filter(Boolean).length >= count) return;
    }
    if (Date.now() > deadline) throw new Error(`timed out: fewer than ${count} endpoints answer ${key}=${value}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
