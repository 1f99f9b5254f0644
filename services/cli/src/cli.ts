import { createNebulaClient } from '@nebula/client';
import { parseCommandLine, USAGE } from './command-line.ts';
import { appsCommands } from './commands/apps.ts';
import { cronCommands } from './commands/cron.ts';
import { deviceGroupsCommands } from './commands/device-groups.ts';
import { groupsCommands } from './commands/groups.ts';
import { hostsCommands } from './commands/hosts.ts';
import { joinTokenCommands } from './commands/join-tokens.ts';
import { prunesCommands } from './commands/prunes.ts';
import { reportsCommands } from './commands/reports.ts';
import { rolloutsCommands } from './commands/rollouts.ts';
import { usersCommands } from './commands/users.ts';
import { type Connection, resolveConnection } from './connection.ts';
import type { Command, Ctx, Io } from './context.ts';
import { describeError, EXIT } from './errors.ts';
import type { ProgressView } from './progress-view.ts';

export { parseCommandLine, USAGE } from './command-line.ts';
export type { Io } from './context.ts';

/**
 * The nebula command: parses the command line (command-line.ts, node:util parseArgs), calls the API
 * through @nebula/client, prints tables for people or JSON for scripts, and returns the exit code
 * (see errors.ts EXIT). One file of commands per resource under commands/, as the API has one router
 * per resource; everything they touch comes in through `Io` (context.ts), so tests run it in-process too.
 */
const COMMANDS: Record<string, Command> = {
  ...appsCommands,
  ...rolloutsCommands,
  ...hostsCommands,
  ...joinTokenCommands,
  ...reportsCommands,
  ...cronCommands,
  ...deviceGroupsCommands,
  ...prunesCommands,
  ...usersCommands,
  ...groupsCommands,
};

/** Runs one command line; resolves to the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  let conn: Connection | null = null;
  let view: ProgressView | null = null;
  try {
    const parsed = parseCommandLine(argv);
    if (parsed === 'help') {
      io.out.write(USAGE);
      return EXIT.ok;
    }
    conn = resolveConnection(parsed.values, io.env, io.localAdminFile);
    const nebula = createNebulaClient(conn);
    const ctx: Ctx = {
      nebula,
      io,
      json: parsed.values.json === true,
      values: parsed.values,
      args: parsed.args,
      timeoutMs: parsed.timeoutMs,
      setView: (v) => (view = v),
    };
    const command = COMMANDS[parsed.command];
    if (!command) throw new Error(`internal: no handler for "${parsed.command}"`);
    return await command(ctx);
  } catch (err) {
    (view as ProgressView | null)?.close();
    const { lines, code } = describeError(err, conn?.url ?? io.env.NEBULA_URL ?? 'http://127.0.0.1:8080');
    for (const l of lines) io.err.write(`${l}\n`);
    return code;
  }
}
