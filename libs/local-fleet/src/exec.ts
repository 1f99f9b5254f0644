import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Runs a command (no shell) with a deadline; its stdout. */
export async function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs, killSignal: 'SIGKILL' });
  return stdout;
}

/** Like run(), but a failure is '' (for probes and removals of what may already be gone). */
export async function tryRun(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  try {
    return await run(cmd, args, timeoutMs);
  } catch {
    return '';
  }
}

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function poll<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
