import { parseArgs } from 'node:util';
import { groupPatchOf, nameList } from './device-group-flags.ts';
import { parseDuration } from './duration.ts';
import { UsageError } from './errors.ts';
import { parseGroupFlags } from './group-flags.ts';
import { reportQueryOf } from './report-flags.ts';
import { parseStrategyFlags } from './strategy-flags.ts';

/**
 * The command line: the usage text, the options every command takes, and parseCommandLine, which
 * checks a command line completely before anything is sent (a wrong one is a UsageError, exit 2).
 */
export const USAGE = `nebula: apps, rollouts, hosts, reports, device groups, cron jobs, prunes, users and user groups of a Nebula API

usage: nebula <command> [arguments] [options]

apps
  apps list                              apps with revision, image and latest rollout
  apps get <app>                         one app's config and latest rollout
  apps create <app> -f <file> [--dry-run]
                                         create from a JSON or YAML file (- for stdin)
  apps update <app> [-f <file>] [--replace] [--waves 5,25,100] [--bake 30s]
              [--max-failed 10%|N] [--no-waves] [--dry-run]
                                         merge the file into the config (--replace: the file
                                         becomes the whole config; omitted fields take defaults);
                                         --waves, --bake, --max-failed merge into the app's
                                         rollout strategy, --no-waves clears it; --dry-run:
                                         change nothing, print the waves' hosts
  apps stop|start|restart|roll|pull <app>
  apps rollback <app> <revision>         a new revision with the config of <revision>
  apps delete <app>                      workers remove its containers
  apps history <app> [--limit N] [--before <revision>]
                                         revisions: who, when, what changed
rollouts
  rollouts get <id>                      progress: counts, failures, hosts
  rollouts list <app> [--limit N] [--before <id>]
  rollouts watch <id> [--timeout T]      live progress until complete (waves, state)
  rollouts pause|resume|abort|retry <id> a rollout in waves: hold it, go on, stop it (and roll
                                         back, with on_failure rollback), resend to failed hosts
  rollouts promote <id> [--full]         the next wave now (--full: every remaining wave)
hosts
  hosts list [--app <app>] [--status online|offline] [--limit N] [--after <id>]
  hosts get <host>                       what it runs, and its latest usage: CPU, memory, disk,
                                         each container's CPU and memory
  hosts revoke <host>                    its NATS credential stops working at once; its
                                         results are refused (it must join again, new key)
  hosts join-token create [--ttl 1h] [--uses N] [--apps a,b] [--description <text>] [--region <r>]
                                         a token for new hosts (shown once) and the command
                                         to start a worker with it (--region: its hosts join
                                         that region of the API's NATS_REGIONS; default the hub)
  hosts join-token list                  tokens: expiry, uses left, apps, region (never the secret)
  hosts join-token delete <id>           no host can join with it any more
reports
  reports list [--host <host>] [--device-group <g>] [--time <T> [--time-filter eq|gt|lt|gte|lte|ne]]
               [--updated true|false] [--limit N] [--after <id>]
                                         host usage reports by id, oldest first (--time: epoch
                                         seconds or an ISO time; --limit: 10 by default, at most
                                         1000; --after: the id the previous page said)
device-groups (alias dg; the apps and cron jobs every host started with DEVICE_GROUP=<group>
               runs, changed live; not \`groups\`, which is user groups)
  device-groups list                     groups with apps, cron jobs, device_group_id, prune_id
  device-groups get <group>
  device-groups info <group>             its apps and cron jobs in full
  device-groups create <group> [--apps a,b] [--cron-jobs c,d]
                                         apps and cron jobs named must exist
  device-groups update <group> [--apps a,b] [--cron-jobs c] [--add-app <app>] [--remove-app <app>]
              [--add-cron-job <job>] [--remove-cron-job <job>]
                                         --apps/--cron-jobs replace that list, the other stays;
                                         --add-*/--remove-* (repeatable) edit it on the server
  device-groups delete <group>           its hosts remove its apps and cron jobs
  device-groups prune <group>            its hosts remove images no container uses (keeping each
                                         app's current and previous one); pruning_allowed or admin
  prune                                  prune on every device group
                                         (changes of groups take --wait and --timeout: follow the
                                         change host by host, as for apps)
cron (cron jobs: an image run at a schedule by the hosts of the device groups that list it)
  cron list                              cron jobs with schedule, image, running, cron_job_id
  cron get <job>                         one job's config
  cron create <job> [-f <file>] [--schedule <cron>] [--image <image>]
                                         from a JSON or YAML file (- for stdin) and/or the flags
                                         (they win over the file); image and schedule required.
                                         Schedule: 5 fields (minute hour day month weekday), or 6
                                         with a leading second; time zone: the file's timezone
                                         (default UTC)
  cron update <job> [-f <file>] [--schedule <cron>] [--image <image>] [--replace]
                                         merge into the config (--replace: the whole config)
  cron delete <job>                      admins only
  cron runs <job> [--limit N]            its runs on every host, newest first: host, start,
                                         end, exit code, timed out, the last log line (--json:
                                         the whole log tail)
prunes (image prunes of device groups)
  prunes list [--device-group <g>] [--prune-id N] [--host <host>] [--limit N]
                                         what each host freed per prune, newest first, and the
                                         total (needs pruning_allowed, or "ro" on the group)
users (admins only)
  users list                             users: password set, token set, created
  users get <user>                       one user (whether a password and a token are set)
  users create <user> [--password-stdin | --token-stdin]
                                         the password (or token) from stdin, or typed without
                                         echo when stdin is a terminal; a missing one is made
                                         at random and never shown
  users update <user> --password-stdin | --token-stdin
  users refresh <user>                   a new random token on stdout (shown only now; the
                                         old one stops working)
  users delete <user>                    also takes it out of every group
groups (user groups; admins only)
  groups list                            groups: members, apps, admin
  groups get <group>
  groups create <group> [flags]          --member <user>, --app <app>=ro|rw, --device-group
                                         <name>=ro|rw, --cron-job <name>=ro|rw (each repeatable),
                                         --admin, --pruning-allowed, --privileged-allowed
  groups update <group> [flags]          the create flags (--member: the whole member list;
                                         --app and the like set entries, keep the others), and
                                         --add-member <user>, --remove-member <user>,
                                         --app-remove <app>, --device-group-remove <name>,
                                         --cron-job-remove <name>, --no-admin,
                                         --no-pruning-allowed, --no-privileged-allowed
  groups delete <group>

options
  --wait                 (create, update and every action) watch the rollout until complete
  --timeout <T>          (--wait, watch) give up after T: seconds, or 15s, 2m, 1h30m; says which
                         hosts are still pending
  --json                 JSON output for scripts (watch: one JSON line per change)
  --url <url>            the API (env NEBULA_URL, default http://127.0.0.1:8080)
  --user <u> --password <p>   basic auth (env NEBULA_USER, NEBULA_PASSWORD)
  --token <t>            bearer token (env NEBULA_TOKEN)
  -h, --help, help       this help

Without credentials, the local admin of \`npm start\` (.stack/api-admin-password) is used when present.
Passwords and tokens of users are never arguments: --password-stdin, --token-stdin.
Exit codes: 0 ok, 1 API or input error (access denied too; a rollout command its state does not
allow), 2 usage error, 3 a watched rollout ended without every expected host applying it (failed,
offline, superseded, or no host at all) or ended failed, aborted or rolled back, 4 --timeout passed.
`;

export const OPTIONS = {
  url: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  file: { type: 'string', short: 'f' },
  replace: { type: 'boolean' },
  limit: { type: 'string' },
  before: { type: 'string' },
  after: { type: 'string' },
  app: { type: 'string', multiple: true },
  status: { type: 'string' },
  ttl: { type: 'string' },
  uses: { type: 'string' },
  apps: { type: 'string' },
  description: { type: 'string' },
  region: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'token-stdin': { type: 'boolean' },
  member: { type: 'string', multiple: true },
  'add-member': { type: 'string', multiple: true },
  'remove-member': { type: 'string', multiple: true },
  'app-remove': { type: 'string', multiple: true },
  'device-group': { type: 'string', multiple: true },
  'device-group-remove': { type: 'string', multiple: true },
  'cron-job': { type: 'string', multiple: true },
  'cron-job-remove': { type: 'string', multiple: true },
  'cron-jobs': { type: 'string' },
  'add-app': { type: 'string', multiple: true },
  'remove-app': { type: 'string', multiple: true },
  'add-cron-job': { type: 'string', multiple: true },
  'remove-cron-job': { type: 'string', multiple: true },
  admin: { type: 'boolean' },
  'no-admin': { type: 'boolean' },
  'pruning-allowed': { type: 'boolean' },
  'no-pruning-allowed': { type: 'boolean' },
  'privileged-allowed': { type: 'boolean' },
  'no-privileged-allowed': { type: 'boolean' },
  waves: { type: 'string' },
  bake: { type: 'string' },
  'max-failed': { type: 'string' },
  'no-waves': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  full: { type: 'boolean' },
  host: { type: 'string' },
  time: { type: 'string' },
  'time-filter': { type: 'string' },
  updated: { type: 'string' },
  schedule: { type: 'string' },
  image: { type: 'string' },
  'prune-id': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type ParsedArgs = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
export type Values = ParsedArgs['values'];

export const ACTIONS = ['stop', 'start', 'restart', 'roll', 'pull', 'delete'] as const;
export type Action = (typeof ACTIONS)[number];
/** The rollout commands (as the API's ROLLOUT_COMMANDS). */
export const ROLLOUT_COMMANDS = ['pause', 'resume', 'promote', 'abort', 'retry'] as const;
export type RolloutCommand = (typeof ROLLOUT_COMMANDS)[number];
const STRATEGY_OPTIONS = ['waves', 'bake', 'max-failed', 'no-waves'] as const;
const GROUP_CREATE_OPTIONS = ['member', 'app', 'device-group', 'cron-job', 'admin', 'pruning-allowed', 'privileged-allowed'] as const;
const GROUP_UPDATE_OPTIONS = [
  ...GROUP_CREATE_OPTIONS,
  'add-member',
  'remove-member',
  'app-remove',
  'device-group-remove',
  'cron-job-remove',
  'no-admin',
  'no-pruning-allowed',
  'no-privileged-allowed',
] as const;
/** Options each command takes besides the connection ones, --json and --help. */
const COMMAND_OPTIONS: Record<string, Array<keyof typeof OPTIONS>> = {
  'apps list': [],
  'apps get': [],
  'apps create': ['file', 'wait', 'timeout', 'dry-run'],
  'apps update': ['file', 'replace', 'wait', 'timeout', 'dry-run', ...STRATEGY_OPTIONS],
  'apps rollback': ['wait', 'timeout'],
  'apps history': ['limit', 'before'],
  ...Object.fromEntries(ACTIONS.map((a) => [`apps ${a}`, ['wait', 'timeout']])),
  'rollouts get': ['limit'],
  'rollouts list': ['limit', 'before'],
  'rollouts watch': ['timeout'],
  ...Object.fromEntries(ROLLOUT_COMMANDS.map((c) => [`rollouts ${c}`, c === 'promote' ? ['full'] : []])),
  'hosts list': ['app', 'status', 'limit', 'after'],
  'hosts get': [],
  'hosts revoke': [],
  'reports list': ['host', 'device-group', 'time', 'time-filter', 'updated', 'limit', 'after'],
  'hosts join-token create': ['ttl', 'uses', 'apps', 'description', 'region'],
  'hosts join-token list': [],
  'hosts join-token delete': [],
  'users list': [],
  'users get': [],
  'users create': ['password-stdin', 'token-stdin'],
  'users update': ['password-stdin', 'token-stdin'],
  'users refresh': [],
  'users delete': [],
  'groups list': [],
  'groups get': [],
  'groups create': [...GROUP_CREATE_OPTIONS],
  'groups update': [...GROUP_UPDATE_OPTIONS],
  'groups delete': [],
  'cron list': [],
  'cron get': [],
  'cron create': ['file', 'schedule', 'image'],
  'cron update': ['file', 'schedule', 'image', 'replace'],
  'cron delete': [],
  'cron runs': ['limit'],
  'device-groups list': [],
  'device-groups get': [],
  'device-groups info': [],
  'device-groups create': ['apps', 'cron-jobs', 'wait', 'timeout'],
  'device-groups update': ['apps', 'cron-jobs', 'add-app', 'remove-app', 'add-cron-job', 'remove-cron-job', 'wait', 'timeout'],
  'device-groups delete': ['wait', 'timeout'],
  'device-groups prune': ['wait', 'timeout'],
  prune: ['wait', 'timeout'],
  'prunes list': ['device-group', 'prune-id', 'host', 'limit'],
};
/** Other names of a command group. */
const ALIASES: Record<string, string> = { dg: 'device-groups' };
/** Commands of three words: `<group> <noun> <verb>`. */
const NESTED = new Set(['hosts join-token']);
/** Positional arguments after the command words. */
const ARGS: Record<string, string[]> = {
  'apps get': ['app'],
  'apps create': ['app'],
  'apps update': ['app'],
  'apps rollback': ['app', 'revision'],
  'apps history': ['app'],
  ...Object.fromEntries(ACTIONS.map((a) => [`apps ${a}`, ['app']])),
  'rollouts get': ['id'],
  'rollouts list': ['app'],
  'rollouts watch': ['id'],
  ...Object.fromEntries(ROLLOUT_COMMANDS.map((c) => [`rollouts ${c}`, ['id']])),
  'hosts get': ['host'],
  'hosts revoke': ['host'],
  'hosts join-token delete': ['id'],
  ...Object.fromEntries(['get', 'create', 'update', 'refresh', 'delete'].map((v) => [`users ${v}`, ['user']])),
  ...Object.fromEntries(['get', 'create', 'update', 'delete'].map((v) => [`groups ${v}`, ['group']])),
  ...Object.fromEntries(['get', 'create', 'update', 'delete', 'runs'].map((v) => [`cron ${v}`, ['job']])),
  ...Object.fromEntries(['get', 'info', 'create', 'update', 'delete', 'prune'].map((v) => [`device-groups ${v}`, ['group']])),
};
const GROUPS = ['apps', 'rollouts', 'hosts', 'reports', 'device-groups', 'prune', 'prunes', 'cron', 'users', 'groups'];
/** Command groups that are a command of their own (no verb). */
const SINGLE = new Set(['prune']);
const COMMON = new Set<string>(['url', 'user', 'password', 'token', 'json', 'help']);

export function positiveInt(value: string | undefined, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max)
    throw new UsageError(`${name} must be a whole number from 1 to ${max} (got "${value}")`);
  return Number(value);
}

export interface Parsed {
  command: string;
  args: Record<string, string>;
  values: Values;
  /** --timeout in milliseconds. */
  timeoutMs?: number;
}

/** A user's secret comes from standard input, one per call (stdin holds one); never as an argument. */
function checkUserSecrets(command: string, values: Values): void {
  if (values['password-stdin'] && values['token-stdin'])
    throw new UsageError(`"${command}" reads one secret from stdin: give --password-stdin or --token-stdin, and the other in a second call`);
  if (command === 'users update' && !values['password-stdin'] && !values['token-stdin'])
    throw new UsageError('"users update" needs --password-stdin or --token-stdin (a new random token: users refresh)');
  // --password is how the CLI logs in (with --user); it is not the new user's password.
  if (values.password !== undefined && values.user === undefined)
    throw new UsageError("--password is the password the CLI logs in with (with --user); the user's own comes from stdin: --password-stdin");
}

export function parseCommandLine(argv: string[]): Parsed | 'help' {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    const [firstLine = ''] = (err as Error).message.split('\n');
    throw new UsageError(firstLine.replace(/\. To specify a positional.*$/, ''));
  }
  const { values, positionals } = parsed;
  if (positionals.length === 0) {
    if (values.help) return 'help';
    throw new UsageError('a command is required');
  }
  const [given, first0, ...more0] = positionals;
  const group = given === undefined ? undefined : (ALIASES[given] ?? given);
  if (group === 'help' && positionals.length === 1) return 'help';
  // `nebula prune`: the group is the command; what follows is arguments.
  const single = group !== undefined && SINGLE.has(group);
  const first = single ? undefined : first0;
  const more = single ? [...(first0 === undefined ? [] : [first0]), ...more0] : more0;
  // `hosts join-token create`: the noun and the verb make the command's second word.
  const nested = first !== undefined && NESTED.has(`${group} ${first}`);
  const verb = nested ? (more[0] === undefined ? first : `${first} ${more[0]}`) : first;
  const rest = nested ? more.slice(1) : more;
  if (group === undefined || !GROUPS.includes(group)) throw new UsageError(`unknown command "${group}" (${GROUPS.join(', ')})`);
  if (values.help && verb === undefined && !single) return 'help';
  const command = `${group} ${verb ?? ''}`.trim();
  const allowed = COMMAND_OPTIONS[command];
  if (!allowed) {
    const verbs = Object.keys(COMMAND_OPTIONS)
      .filter((c) => c.startsWith(`${group} `))
      .map((c) => c.slice(group.length + 1))
      .filter((v) => !nested || v.startsWith(`${first} `));
    throw new UsageError(
      verb === undefined ? `"${group}" needs a subcommand: ${verbs.join(', ')}` : `unknown command "${command}" (${group}: ${verbs.join(', ')})`,
    );
  }
  if (values.help) return 'help';
  for (const [name, v] of Object.entries(values)) {
    if (v !== undefined && !COMMON.has(name) && !allowed.includes(name as keyof typeof OPTIONS)) throw new UsageError(`"${command}" does not take --${name}`);
  }
  const names = ARGS[command] ?? [];
  if (rest.length < names.length) throw new UsageError(`"${command}" needs ${names.map((n) => `<${n}>`).join(' ')}`);
  if (rest.length > names.length)
    throw new UsageError(
      `"${command}" takes ${names.length === 0 ? 'no arguments' : names.map((n) => `<${n}>`).join(' ')}; unexpected "${rest[names.length]}"`,
    );
  const args = Object.fromEntries(
    names.map((n, i): [string, string] => {
      const value = rest[i];
      if (value === undefined) throw new UsageError(`"${command}" needs <${n}>`);
      return [n, value];
    }),
  );
  const strategy = command === 'apps update' ? parseStrategyFlags(values) : { kind: 'none' };
  if (command === 'apps create' && values.file === undefined) throw new UsageError(`"${command}" needs -f <file> (JSON or YAML; - for stdin)`);
  if (command === 'apps update' && values.file === undefined && strategy.kind === 'none')
    throw new UsageError(`"${command}" needs -f <file> (JSON or YAML; - for stdin), or --waves, --bake, --max-failed, --no-waves`);
  if (command === 'cron create' && values.file === undefined && (values.schedule === undefined || values.image === undefined))
    throw new UsageError(`"${command}" needs -f <file> (JSON or YAML; - for stdin), or --schedule and --image`);
  if (command === 'cron update' && values.file === undefined && values.schedule === undefined && values.image === undefined)
    throw new UsageError(`"${command}" needs -f <file> (JSON or YAML; - for stdin), --schedule or --image`);
  if (command === 'cron update' && values.replace && values.file === undefined && (values.schedule === undefined || values.image === undefined))
    throw new UsageError('--replace makes the body the whole config: give -f <file>, or both --schedule and --image');
  if (command === 'cron runs') positiveInt(values.limit, '--limit', 1000);
  if (command === 'prunes list') {
    if ((values['device-group']?.length ?? 0) > 1) throw new UsageError('"prunes list" takes one --device-group');
    positiveInt(values['prune-id'], '--prune-id', 2_147_483_647);
    positiveInt(values.limit, '--limit', 10_000);
  }
  for (const flag of ['schedule', 'image'] as const) {
    if (values[flag] !== undefined && values[flag].trim() === '') throw new UsageError(`--${flag} must not be empty`);
  }
  if (values.replace && values.file === undefined && command !== 'cron update')
    throw new UsageError('--replace goes with -f <file>: the file becomes the whole config');
  if (values['dry-run'] && values.wait) throw new UsageError('--dry-run changes nothing: there is no rollout to --wait for');
  if (command === 'hosts list' && (values.app?.length ?? 0) > 1) throw new UsageError('"hosts list" takes one --app');
  if (command === 'users create' || command === 'users update') checkUserSecrets(command, values);
  if (command === 'device-groups update') groupPatchOf(values);
  if (command === 'device-groups create') {
    nameList(values.apps, '--apps');
    nameList(values['cron-jobs'], '--cron-jobs');
  }
  if (command === 'reports list') reportQueryOf(values);
  if (command === 'groups create' || command === 'groups update') parseGroupFlags(values, command === 'groups create' ? 'create' : 'update');
  if (values.status !== undefined && values.status !== 'online' && values.status !== 'offline')
    throw new UsageError(`--status must be online or offline (got "${values.status}")`);
  if (values.ttl !== undefined) {
    const ms = parseDuration(values.ttl);
    if (ms === null || ms < 60_000 || ms > 30 * 86_400_000)
      throw new UsageError(`--ttl must be a duration from 1m to 720h, like 15m, 1h, 24h (got "${values.ttl}")`);
  }
  positiveInt(values.uses, '--uses', 100_000);
  if (!command.startsWith('device-groups') && values.apps?.split(',').some((a) => !/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(a.trim()))) {
    throw new UsageError(`--apps must be app names separated by commas, like web,db (got "${values.apps}")`);
  }
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    if (command !== 'rollouts watch' && !values.wait) throw new UsageError('--timeout goes with --wait (or rollouts watch)');
    timeoutMs = parseDuration(values.timeout) ?? undefined;
    if (timeoutMs === undefined)
      throw new UsageError(`--timeout must be seconds or a duration like 15s, 2m, 1h30m, above zero and below 24 days (got "${values.timeout}")`);
  }
  return { command, args, values, ...(timeoutMs === undefined ? {} : { timeoutMs }) };
}
