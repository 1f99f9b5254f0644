/**
 * The local fleet of `npm start` (see local-fleet.ts):
 *
 *   npm run -s fleet -- status [--json]   the hosts: id, address, apps, engine, worker
 *   npm run -s fleet -- cleanup           removes what a fleet that did not stop left behind
 *   node tools/src/fleet/main.ts start    (run by tools/start.sh when FLEET_HOSTS > 0) starts the
 *                                         fleet, prints its table and holds it until SIGINT/SIGTERM/SIGHUP
 *                                         or until the process that started it is gone
 *
 * Settings come from the environment: FLEET_HOSTS, APP_NAME, FLEET_IMAGES, NEBULA_URL (or
 * API_PORT), the API's local admin (BASIC_AUTH_USER/BASIC_AUTH_PASSWORD or AUTH_TOKEN), and
 * NEBULA_FLEET_DIR (default .stack/fleet).
 */
import { FleetConfigError, fleetConfig, fleetDir } from './config.ts';
import { currentFleet, FleetRunningError, hostRows, REPO_ROOT, removeLeftovers, startLocalFleet } from './local-fleet.ts';
import { hostsJson, hostsTable } from './table.ts';

const USAGE = `usage: npm run -s fleet -- status [--json] | cleanup
       node tools/src/fleet/main.ts start      (tools/start.sh runs it when FLEET_HOSTS > 0)`;

const say = (line: string) => process.stderr.write(`[fleet] ${line}\n`);

async function start(): Promise<number> {
  const cfg = fleetConfig(process.env, REPO_ROOT);
  if (cfg.hosts === 0) {
    say('FLEET_HOSTS is 0 or unset: no local fleet');
    return 0;
  }
  const fleet = await startLocalFleet(cfg, say);
  let ending = false;
  const end = (why: string) => {
    if (ending) return;
    ending = true;
    say(`${why}: stopping the workers and removing the ${cfg.hosts} host(s)`);
    void fleet.stop().then(
      () => {
        say('local fleet removed');
        process.exit(0);
      },
      (err: unknown) => {
        say(`could not remove everything: ${err instanceof Error ? err.message : String(err)} (npm run -s fleet -- cleanup removes what is left)`);
        process.exit(1);
      },
    );
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => end(sig));
  // Started by tools/start.sh: when that shell is gone (kill -9), nobody would stop the fleet.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) end(`the process that started the fleet (pid ${parent}) is gone`);
  }, 1000);
  const rows = await hostRows(fleet.state.hosts);
  process.stderr.write(
    `\n  Local fleet: ${rows.length} simulated host(s), each with its own network namespace, Docker engine and worker\n` +
      `${hostsTable(rows)
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n')}\n` +
      `  A port an app publishes answers at every address above. Workers' logs: ${cfg.dir}/<host id>/worker.log\n` +
      '  npm run -s fleet -- status [--json] lists them; stopping npm start removes them.\n\n',
  );
  return new Promise<number>(() => undefined); // runs until a signal
}

async function status(json: boolean): Promise<number> {
  const found = await currentFleet(fleetDir(process.env, REPO_ROOT));
  if (found.state === null) {
    if (json) process.stdout.write('[]\n');
    else {
      process.stdout.write(
        found.stale
          ? 'no local fleet is running (an earlier one did not stop cleanly: the next `FLEET_HOSTS=N npm start`, or `npm run -s fleet -- cleanup`, removes what it left)\n'
          : 'no local fleet is running (start one with FLEET_HOSTS=N npm start)\n',
      );
    }
    return 0;
  }
  const { rows, state } = found;
  if (json) process.stdout.write(`${hostsJson(rows)}\n`);
  else {
    const phase = state.phase === 'running' ? '' : ` (${state.phase})`;
    process.stdout.write(`local fleet of ${rows.length} host(s)${phase}, API ${state.api_url}, since ${state.started_at}\n${hostsTable(rows)}\n`);
  }
  // Exit 1 when a host is not all there (its engine does not answer, or its worker exited).
  return rows.every((r) => r.engine === 'up' && r.worker === 'running') ? 0 : 1;
}

async function cleanup(): Promise<number> {
  const left = await removeLeftovers(fleetDir(process.env, REPO_ROOT));
  if (!left.state && left.workers === 0 && left.runs.length === 0) process.stdout.write('nothing left of a local fleet\n');
  else process.stdout.write(`removed: ${left.workers} worker(s), ${left.runs.length} run(s) of hosts${left.state ? ', the state file' : ''}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const unknown = rest.filter((a) => a !== '--json');
  if (unknown.length > 0 || (rest.includes('--json') && command !== 'status')) {
    process.stderr.write(`unknown argument: ${unknown[0] ?? '--json'}\n${USAGE}\n`);
    return 2;
  }
  switch (command) {
    case 'start':
      return start();
    case 'status':
      return status(rest.includes('--json'));
    case 'cleanup':
      return cleanup();
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command: ${command}\n${USAGE}\n`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof FleetConfigError) {
    say(err.message);
    process.exitCode = 2;
  } else if (err instanceof FleetRunningError) {
    say(err.message);
    process.exitCode = 1;
  } else {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
