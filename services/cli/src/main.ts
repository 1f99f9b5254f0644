import { readFileSync } from 'node:fs';
import { run } from './cli.ts';
import { promptHidden } from './hidden-prompt.ts';

/** `nebula ...`: see cli.ts (USAGE) and the README. */
process.exitCode = await run(process.argv.slice(2), {
  out: process.stdout,
  err: process.stderr,
  env: process.env,
  isTTY: process.stdout.isTTY === true,
  readStdin: () => readFileSync(0, 'utf8'),
  stdinIsTTY: process.stdin.isTTY === true,
  promptSecret: (prompt) => promptHidden(prompt, process.stdin, process.stderr),
});
