import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface ExecOptions {
  /** Killed (SIGKILL) after this long: every outside call has a deadline. */
  timeoutMs: number;
  cwd?: string;
  /** Piped to the command's standard input. */
  stdin?: Readable;
  env?: NodeJS.ProcessEnv;
}

/** Runs a command; resolves to its stdout, rejects naming the command with its output on failure. */
export function exec(cmd: string, args: string[], opts: ExecOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    if (opts.stdin && child.stdin) opts.stdin.pipe(child.stdin);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && !timedOut) return resolve(out);
      const why = timedOut ? `timed out after ${opts.timeoutMs} ms` : `exited with ${code}`;
      reject(new Error(`${cmd} ${args.join(' ')}: ${why}\n${(err || out).trim().slice(-4000)}`));
    });
  });
}

/** Like exec, but resolves to null instead of rejecting (a missing image, say). */
export async function tryExec(cmd: string, args: string[], opts: ExecOptions): Promise<string | null> {
  try {
    return await exec(cmd, args, opts);
  } catch {
    return null;
  }
}
