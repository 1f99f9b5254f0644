/**
 * Polls HTTP endpoints of the echo image until each answers with an expected env value.
 *
 * Every check is a fresh connection (no keep-alive: a pooled socket to a container being replaced
 * can hang until its timeout) with a short timeout, so a check never waits on a container that is
 * gone; a slow answer is simply asked again.
 */
import { get } from 'node:http';

const CHECK_TIMEOUT_MS = 500;

export function answersWith(url: string, key: string, value: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: CHECK_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve((JSON.parse(body) as { env?: Record<string, string> }).env?.[key] === value);
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `count` distinct endpoints from `urls()` answer with env[key] === value. `urls` is
 * called again on each round, since containers and their ports change during an update. With a
 * fixed list, each endpoint is polled on its own, so one slow check never delays the others.
 */
export async function waitAllAnswer(
  urls: () => Promise<string[]>,
  count: number,
  key: string,
  value: string,
  timeoutMs = 120_000,
  fixed = false,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const timedOut = () => new Error(`timed out: fewer than ${count} endpoints answer ${key}=${value}`);
  if (fixed) {
    const list = await urls();
    await Promise.all(
      list.map(async (u) => {
        while (!(await answersWith(u, key, value))) {
          if (Date.now() > deadline) throw timedOut();
          await sleep(10);
        }
      }),
    );
    return;
  }
  for (;;) {
    const list = await urls().catch(() => []);
    if (list.length >= count) {
      const ok = await Promise.all(list.map((u) => answersWith(u, key, value)));
      if (ok.filter(Boolean).length >= count) return;
    }
    if (Date.now() > deadline) throw timedOut();
    await sleep(10);
  }
}
