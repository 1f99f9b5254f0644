import type { Io } from './context.ts';
import { InputError } from './errors.ts';

/**
 * A user's new password or token, never from the command line (shell history, `ps`): from standard
 * input (`--password-stdin`, as `docker login --password-stdin`), or, when standard input is a
 * terminal, typed at a prompt that does not echo it, twice. Error messages never quote it.
 */

/** The secret in what standard input held: one line, its line break dropped. */
export function secretFromText(text: string, what: string): string {
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new InputError(`no ${what} on standard input (pipe it in, e.g. from a file or a password manager)`);
  if (/[\r\n]/.test(secret)) throw new InputError(`the ${what} on standard input must be one line`);
  return secret;
}

export async function readSecret(io: Io, what: string): Promise<string> {
  if (io.stdinIsTTY && io.promptSecret) {
    const first = await io.promptSecret(`${what}: `);
    const again = await io.promptSecret(`${what} again: `);
    if (first !== again) throw new InputError(`the two ${what}s typed differ`);
    return secretFromText(first, what);
  }
  let text: string;
  try {
    text = io.readStdin();
  } catch (err) {
    throw new InputError(`cannot read the ${what} from standard input: ${(err as Error).message}`, { cause: err });
  }
  return secretFromText(text, what);
}
