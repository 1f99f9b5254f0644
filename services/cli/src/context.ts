import type { NebulaClient } from '@nebula/client';
import type { Values } from './command-line.ts';
import type { Out, ProgressView } from './progress-view.ts';

/**
 * What a command gets: the API client, the parsed command line, and everything it prints through
 * (`Io`: tests run the command in-process too).
 */
export interface Io {
  out: Out;
  err: Out;
  env: NodeJS.ProcessEnv;
  /** Standard output is a terminal: draw the live progress bar. */
  isTTY: boolean;
  readStdin: () => string;
  /** Standard input is a terminal: a secret is typed at `promptSecret` instead of read from it. */
  stdinIsTTY?: boolean;
  /** Asks on the terminal without echoing what is typed (see hidden-prompt.ts). */
  promptSecret?: (prompt: string) => Promise<string>;
  /** Where the local admin's password is looked for (default: .stack/api-admin-password of the repo). */
  localAdminFile?: string;
}

export interface Ctx {
  nebula: NebulaClient;
  io: Io;
  json: boolean;
  values: Values;
  args: Record<string, string>;
  /** --timeout (ms) for --wait and watch; none: wait as long as it takes. */
  timeoutMs?: number | undefined;
  setView(v: ProgressView): void;
}

export function print(ctx: Ctx, text: string): void {
  ctx.io.out.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(ctx: Ctx, value: unknown): void {
  print(ctx, JSON.stringify(value, null, 2));
}

/** One command: resolves to the exit code (see errors.ts EXIT). */
export type Command = (ctx: Ctx) => Promise<number>;

/** A positional argument of the command; command-line.ts has checked the command got all of its own. */
export function arg(ctx: Ctx, name: string): string {
  const value = ctx.args[name];
  if (value === undefined) throw new Error(`internal: the command has no <${name}> argument`);
  return value;
}
