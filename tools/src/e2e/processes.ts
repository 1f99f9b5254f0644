/**
 * The services of the system under test as real child processes (`node services/x/src/main.ts`),
 * each configured by its environment, with its output in a log file of the run.
 *
 *   stopped ──start()──▶ starting ──ready()──▶ running ──stop() (SIGTERM)──▶ stopped
 *                                                  └────kill() (SIGKILL)───▶ stopped
 *
 * start() again after either gives a fresh process with the same environment (and a fresh value
 * for the variables computed per start, such as a free metrics port).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@nebula/test-kit';

export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

/** Whether a process runs (a zombie, killed but not yet reaped, does not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export type ReadyCheck = (output: string, env: Record<string, string>) => Promise<boolean> | boolean;

export interface ServiceProcessOptions {
  /** e.g. `api-1`, `worker-host-2`. */
  name: string;
  /** Path of the entry point, relative to the repository root. */
  main: string;
  /** The environment of every start (PATH is added). */
  env: Record<string, string> | (() => Promise<Record<string, string>>);
  /** Ready when this returns true (polled); gets the process's output so far. */
  ready: ReadyCheck;
  logDir: string;
  readyTimeoutMs?: number;
  /** Called after every spawn (e.g. to note the pid). */
  onStart?: () => void;
}

export class ServiceProcess {
  readonly name: string;
  readonly main: string;
  private readonly opts: ServiceProcessOptions;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private tail = '';
  private log: WriteStream;
  /** The environment of the current (or last) start. */
  env: Record<string, string> = {};
  starts = 0;

  constructor(opts: ServiceProcessOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.main = opts.main;
    this.log = createWriteStream(join(opts.logDir, `${opts.name}.log`), { flags: 'a' });
  }

  private write(d: Buffer | string): void {
    if (this.log.writable) this.log.write(d);
  }

  running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The last 32 KB of output, for failure messages. */
  output(): string {
    return this.tail;
  }

  /**
   * Spawns the process and waits until it is ready. A port picked free a moment ago may be taken by
   * then (other tests run on this machine): a start that fails with EADDRINUSE is tried again with a
   * fresh environment (the env function picks new ports).
   */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startOnce();
        return;
      } catch (err) {
        if (attempt >= 3 || this.running() || !this.tail.includes('EADDRINUSE')) throw err;
      }
    }
  }

  private async startOnce(): Promise<void> {
    if (this.running()) return;
    const env = typeof this.opts.env === 'function' ? await this.opts.env() : this.opts.env;
    this.env = { PATH: process.env.PATH ?? '', ...env };
    this.tail = '';
    this.starts += 1;
    this.write(`\n----- start ${this.starts} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, [join(REPO_ROOT, this.opts.main)], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
    this.child = child;
    const onData = (d: Buffer) => {
      this.write(d);
      this.tail = (this.tail + d.toString()).slice(-32_768);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.opts.onStart?.();
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.write(`----- exited: code ${code} signal ${signal}\n`);
        resolve();
      }),
    );
    let exited = false;
    void this.exited.then(() => (exited = true));
    await waitFor(
      `${this.name} to be ready`,
      async () => {
        // An exit is final: stop waiting (waitFor would retry a thrown error until its timeout).
        if (exited) return 'exited' as const;
        return await this.opts.ready(this.tail, this.env);
      },
      this.opts.readyTimeoutMs ?? 30_000,
      50,
    )
      .catch((err: unknown) => {
        throw new Error(`${this.name} did not become ready: ${this.tail.slice(-2000)}`, { cause: err });
      })
      .then((r) => {
        if (r === 'exited') throw new Error(`${this.name} exited while starting (${child.exitCode ?? child.signalCode}): ${this.tail.slice(-2000)}`);
      });
  }

  /** SIGTERM, and SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running()) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL: no chance to finish anything. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running()) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Ends the process (SIGKILL) and closes the log: for the harness's final cleanup. */
  async dispose(): Promise<void> {
    await this.kill();
    if (this.log.writable) await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}
