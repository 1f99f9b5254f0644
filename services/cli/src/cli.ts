import { parseArgs } from 'node:util';
import { type AppDoc, createNebulaClient, type Host, type NebulaClient, type RolloutProgress, type RolloutSummary, watchRollout } from '@nebula/client';
import { readConfigFile } from './config-file.ts';
import { type Connection, resolveConnection } from './connection.ts';
import { describeError, EXIT, UsageError } from './errors.ts';
import { ago, keyValues, ms, table } from './format.ts';
import { doneOf, type Out, ProgressView, summaryLine } from './progress-view.ts';

/**
 * The nebula command: parses the command line (node:util parseArgs), calls the API through
 * @nebula/client, prints tables for people or JSON for scripts, and returns the exit code
 * (see errors.ts EXIT). Everything it touches comes in through `Io`, so tests run it in-process too.
 */
export interface Io {
  out: Out;
  err: Out;
  env: NodeJS.ProcessEnv;
  /** Standard output is a terminal: draw the live progress bar. */
  isTTY: boolean;
  readStdin: () => string;
  /** Where the local admin's password is looked for (default: .stack/api-admin-password of the repo). */
  localAdminFile?: string;
}

export const USAGE = `nebula: apps, rollouts and hosts of a Nebula API

usage: nebula <command> [arguments] [options]

apps
  apps list                              apps with revision, image and latest rollout
  apps get <app>                         one app's config and latest rollout
  apps create <app> -f <file>            create from a JSON or YAML file (- for stdin)
  apps update <app> -f <file> [--replace]
                                         merge the file into the config (--replace: the file
                                         becomes the whole config; omitted fields take defaults)
  apps stop|start|restart|roll|pull <app>
  apps rollback <app> <revision>         a new revision with the config of <revision>
  apps delete <app>                      workers remove its containers
  apps history <app> [--limit N] [--before <revision>]
                                         revisions: who, when, what changed
rollouts
  rollouts get <id>                      progress: counts, failures, hosts
  rollouts list <app> [--limit N] [--before <id>]
  rollouts watch <id>                    live progress until complete
hosts
  hosts list [--app <app>] [--status online|offline] [--limit N] [--after <id>]
  hosts get <host>

options
  --wait                 (create, update and every action) watch the rollout until complete
  --json                 JSON output for scripts (watch: one JSON line per change)
  --url <url>            the API (env NEBULA_URL, default http://127.0.0.1:8080)
  --user <u> --password <p>   basic auth (env NEBULA_USER, NEBULA_PASSWORD)
  --token <t>            bearer token (env NEBULA_TOKEN)
  -h, --help             this help

Without credentials, the local admin of \`npm start\` (.stack/api-admin-password) is used when present.
Exit codes: 0 ok, 1 API or input error, 2 usage error, 3 a watched rollout ended with failed hosts.
`;

const OPTIONS = {
  url: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  wait: { type: 'boolean' },
  file: { type: 'string', short: 'f' },
  replace: { type: 'boolean' },
  limit: { type: 'string' },
  before: { type: 'string' },
  after: { type: 'string' },
  app: { type: 'string' },
  status: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

const ACTIONS = ['stop', 'start', 'restart', 'roll', 'pull', 'delete'] as const;
type Action = (typeof ACTIONS)[number];
/** Options each command takes besides the connection ones, --json and --help. */
const COMMAND_OPTIONS: Record<string, Array<keyof typeof OPTIONS>> = {
  'apps list': [],
  'apps get': [],
  'apps create': ['file', 'wait'],
  'apps update': ['file', 'replace', 'wait'],
  'apps rollback': ['wait'],
  'apps history': ['limit', 'before'],
  ...Object.fromEntries(ACTIONS.map((a) => [`apps ${a}`, ['wait']])),
  'rollouts get': ['limit'],
  'rollouts list': ['limit', 'before'],
  'rollouts watch': [],
  'hosts list': ['app', 'status', 'limit', 'after'],
  'hosts get': [],
};
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
  'hosts get': ['host'],
};
const COMMON = new Set<string>(['url', 'user', 'password', 'token', 'json', 'help']);

function positiveInt(value: string | undefined, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new UsageError(`${name} must be a whole number from 1 to ${max} (got "${value}")`);
  return Number(value);
}

interface Parsed {
  command: string;
  args: Record<string, string>;
  values: Values;
}

export function parseCommandLine(argv: string[]): Parsed | 'help' {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, ''));
  }
  const { values, positionals } = parsed;
  if (positionals.length === 0) {
    if (values.help) return 'help';
    throw new UsageError('a command is required');
  }
  const [group, verb, ...rest] = positionals;
  if (!['apps', 'rollouts', 'hosts'].includes(group!)) throw new UsageError(`unknown command "${group}" (apps, rollouts, hosts)`);
  if (values.help && verb === undefined) return 'help';
  const command = `${group} ${verb ?? ''}`.trim();
  const allowed = COMMAND_OPTIONS[command];
  if (!allowed) {
    const verbs = Object.keys(COMMAND_OPTIONS).filter((c) => c.startsWith(`${group} `)).map((c) => c.slice(group!.length + 1));
    throw new UsageError(verb === undefined ? `"${group}" needs a subcommand: ${verbs.join(', ')}` : `unknown command "${command}" (${group}: ${verbs.join(', ')})`);
  }
  if (values.help) return 'help';
  for (const [name, v] of Object.entries(values)) {
    if (v !== undefined && !COMMON.has(name) && !allowed.includes(name as keyof typeof OPTIONS)) throw new UsageError(`"${command}" does not take --${name}`);
  }
  const names = ARGS[command] ?? [];
  if (rest.length < names.length) throw new UsageError(`"${command}" needs ${names.map((n) => `<${n}>`).join(' ')}`);
  if (rest.length > names.length) throw new UsageError(`"${command}" takes ${names.length === 0 ? 'no arguments' : names.map((n) => `<${n}>`).join(' ')}; unexpected "${rest[names.length]}"`);
  const args = Object.fromEntries(names.map((n, i) => [n, rest[i]!]));
  if ((command === 'apps create' || command === 'apps update') && values.file === undefined) throw new UsageError(`"${command}" needs -f <file> (JSON or YAML; - for stdin)`);
  if (values.status !== undefined && values.status !== 'online' && values.status !== 'offline') throw new UsageError(`--status must be online or offline (got "${values.status}")`);
  return { command, args, values };
}

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
    const ctx: Ctx = { nebula, io, json: parsed.values.json === true, values: parsed.values, args: parsed.args, setView: (v) => (view = v) };
    return await COMMANDS[parsed.command]!(ctx);
  } catch (err) {
    (view as ProgressView | null)?.close();
    const { lines, code } = describeError(err, conn?.url ?? io.env.NEBULA_URL ?? 'http://127.0.0.1:8080');
    for (const l of lines) io.err.write(`${l}\n`);
    return code;
  }
}

interface Ctx {
  nebula: NebulaClient;
  io: Io;
  json: boolean;
  values: Values;
  args: Record<string, string>;
  setView(v: ProgressView): void;
}

function print(ctx: Ctx, text: string): void {
  ctx.io.out.write(text.endsWith('\n') ? text : `${text}\n`);
}

function printJson(ctx: Ctx, value: unknown): void {
  print(ctx, JSON.stringify(value, null, 2));
}

/** Follows a rollout to the end; the exit code says whether hosts failed. */
async function follow(ctx: Ctx, id: string): Promise<{ last: RolloutProgress; code: number }> {
  // A plain read first: a wrong id, refused credentials or an unreachable API fail here at once
  // (the event stream would keep reconnecting to an API that is down).
  await ctx.nebula.rollouts.get.query({ id, hosts_limit: 1 });
  const view = new ProgressView(ctx.io.out, ctx.json ? 'json' : ctx.io.isTTY ? 'tty' : 'plain');
  ctx.setView(view);
  const last = await watchRollout(ctx.nebula, id, (p) => view.update(p));
  view.finish(last);
  return { last, code: last.failed > 0 ? EXIT.rolloutFailed : EXIT.ok };
}

function rolloutState(r: RolloutSummary): string {
  if (!r.complete) return r.superseded_by ? 'superseded (in progress)' : 'in progress';
  if (r.failed > 0) return 'failed';
  return r.superseded_by ? 'complete (superseded)' : 'complete';
}

function rolloutCell(r: RolloutSummary | null | undefined): string {
  if (!r) return '-';
  return `${doneOf(r as RolloutProgress)}/${r.expected} ${rolloutState(r)}`;
}

/** Prints an action's answer, and with --wait follows its rollout. */
async function afterAction(ctx: Ctx, app: string, label: string, doc: Partial<AppDoc> & { rollout_id: string }): Promise<number> {
  if (!ctx.values.wait) {
    if (ctx.json) printJson(ctx, doc);
    else {
      print(ctx, `${app}: ${label}${doc.app_id !== undefined ? `, revision ${doc.app_id}` : ''}; rollout ${doc.rollout_id}`);
      ctx.io.err.write(`follow it: nebula rollouts watch ${doc.rollout_id}\n`);
    }
    return EXIT.ok;
  }
  if (!ctx.json) print(ctx, `${app}: ${label}${doc.app_id !== undefined ? `, revision ${doc.app_id}` : ''}; rollout ${doc.rollout_id}`);
  // --json --wait: the progress lines, then one document with the answer and the final progress.
  const { last, code } = await follow(ctx, doc.rollout_id);
  if (ctx.json) print(ctx, JSON.stringify({ ...doc, rollout: last }));
  return code;
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const COMMANDS: Record<string, (ctx: Ctx) => Promise<number>> = {
  async 'apps list'(ctx) {
    const { apps } = await ctx.nebula.apps.list.query();
    if (ctx.json) {
      printJson(ctx, { apps });
      return EXIT.ok;
    }
    // One read per app (a few at a time): an app deleted meanwhile is skipped.
    const docs = await mapLimited(apps.sort(), 8, (name) => ctx.nebula.apps.get.query({ name }).catch(() => null));
    const rows = docs.filter((d) => d !== null).map((d) => [d.app_name, d.app_id, d.docker_image, d.running ? 'yes' : 'no', rolloutCell(d.rollout)]);
    print(ctx, rows.length === 0 ? 'no apps' : table(['NAME', 'REVISION', 'IMAGE', 'RUNNING', 'LATEST ROLLOUT'], rows));
    return EXIT.ok;
  },

  async 'apps get'(ctx) {
    const doc = await ctx.nebula.apps.get.query({ name: ctx.args.app! });
    if (ctx.json) {
      printJson(ctx, doc);
      return EXIT.ok;
    }
    const { app_name, app_id, incarnation, rollout_id, rollout, ...config } = doc;
    print(
      ctx,
      keyValues([
        ['name', app_name],
        ['revision', app_id],
        ['incarnation', incarnation],
        ...Object.entries(config).filter(([, v]) => !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && v !== null && Object.keys(v).length === 0)) as Array<[string, unknown]>,
        ['rollout', rollout ? `${rollout_id} ${rollout.action}: ${rolloutCell(rollout)} (applied ${rollout.applied}, failed ${rollout.failed}, pending ${rollout.pending})` : rollout_id],
      ]),
    );
    return EXIT.ok;
  },

  async 'apps create'(ctx) {
    const app = ctx.args.app!;
    const config = readConfigFile(ctx.values.file!, app, ctx.io.readStdin);
    const doc = await ctx.nebula.apps.create.mutate({ ...(config as { docker_image: string }), name: app });
    return afterAction(ctx, app, 'created', doc);
  },

  async 'apps update'(ctx) {
    const app = ctx.args.app!;
    const config = readConfigFile(ctx.values.file!, app, ctx.io.readStdin);
    const doc = ctx.values.replace
      ? await ctx.nebula.apps.update.mutate({ ...(config as { docker_image: string }), name: app })
      : await ctx.nebula.apps.patch.mutate({ ...config, name: app });
    return afterAction(ctx, app, ctx.values.replace ? 'replaced' : 'updated', doc);
  },

  ...Object.fromEntries(
    ACTIONS.map((action: Action) => [
      `apps ${action}`,
      async (ctx: Ctx) => {
        const name = ctx.args.app!;
        if (action === 'delete') return afterAction(ctx, name, 'deleted', await ctx.nebula.apps.delete.mutate({ name }));
        const doc = await ctx.nebula.apps[action].mutate({ name });
        return afterAction(ctx, name, { stop: 'stopped', start: 'started', restart: 'restarting', roll: 'rolling restart', pull: 'pulling' }[action], doc);
      },
    ]),
  ),

  async 'apps rollback'(ctx) {
    const app = ctx.args.app!;
    const revision = positiveInt(ctx.args.revision, '<revision>', 2 ** 31 - 1)!;
    const doc = await ctx.nebula.apps.rollback.mutate({ name: app, revision });
    return afterAction(ctx, app, `rolled back to revision ${revision}`, doc);
  },

  async 'apps history'(ctx) {
    const limit = positiveInt(ctx.values.limit, '--limit', 1000);
    const before = positiveInt(ctx.values.before, '--before', 2 ** 31 - 1);
    const h = await ctx.nebula.apps.history.query({ name: ctx.args.app!, ...(limit ? { limit } : {}), ...(before ? { before } : {}) });
    if (ctx.json) {
      printJson(ctx, h);
      return EXIT.ok;
    }
    const change = (c: { field: string; from?: unknown; to?: unknown }) => ('from' in c && 'to' in c ? `${c.field}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}` : 'to' in c ? `${c.field}: ${JSON.stringify(c.to)}` : `-${c.field}`);
    print(
      ctx,
      table(
        ['REVISION', 'ACTION', 'ACTOR', 'WHEN', 'ROLLOUT', 'CHANGES'],
        h.revisions.map((r) => [r.app_id, r.action, r.actor, ago(r.created_at), r.rollout_id, r.changes.map(change).join(', ')]),
      ),
    );
    if (h.next !== null) ctx.io.err.write(`older: nebula apps history ${ctx.args.app} --before ${h.next}\n`);
    return EXIT.ok;
  },

  async 'rollouts get'(ctx) {
    const hostsLimit = positiveInt(ctx.values.limit, '--limit', 1000);
    const p = await ctx.nebula.rollouts.get.query({ id: ctx.args.id!, ...(hostsLimit ? { hosts_limit: hostsLimit } : {}) });
    if (ctx.json) {
      printJson(ctx, p);
      return EXIT.ok;
    }
    print(ctx, summaryLine(p));
    print(ctx, keyValues([
      ['created', `${p.created_at} (${ago(p.created_at)})`],
      ['published', p.published_at],
      ['first result', p.first_result_at],
      ['last result', p.last_result_at],
    ]));
    if (p.failures.length > 0) {
      print(ctx, '\nfailures:');
      for (const f of p.failures) print(ctx, `  ${f.host}: ${f.error ?? 'failed'}`);
    }
    if (p.hosts.length > 0) {
      print(ctx, '');
      print(ctx, table(['HOST', 'STATE', 'EXPECTED', 'ONLINE', 'APPLY', 'REPORTED', 'ERROR'], p.hosts.map((h) => [h.host, h.state, h.expected ? 'yes' : 'no', h.online ? 'yes' : 'no', ms(h.durations_ms?.apply), ago(h.reported_at), h.error])));
      if (p.hosts_next) ctx.io.err.write(`more hosts: nebula rollouts get ${p.id} --json (hosts_after ${p.hosts_next})\n`);
    }
    return EXIT.ok;
  },

  async 'rollouts list'(ctx) {
    const limit = positiveInt(ctx.values.limit, '--limit', 100);
    const list = await ctx.nebula.rollouts.list.query({ name: ctx.args.app!, ...(limit ? { limit } : {}), ...(ctx.values.before ? { before: ctx.values.before } : {}) });
    if (ctx.json) {
      printJson(ctx, list);
      return EXIT.ok;
    }
    print(
      ctx,
      table(
        ['ID', 'REVISION', 'ACTION', 'CREATED', 'HOSTS', 'APPLIED', 'FAILED', 'PENDING', 'STATE'],
        list.rollouts.map((r) => [r.id, r.revision, r.action, ago(r.created_at), `${doneOf(r as RolloutProgress)}/${r.expected}`, r.applied, r.failed, r.pending, rolloutState(r)]),
      ),
    );
    if (list.next) ctx.io.err.write(`older: nebula rollouts list ${ctx.args.app} --before ${list.next}\n`);
    return EXIT.ok;
  },

  async 'rollouts watch'(ctx) {
    return (await follow(ctx, ctx.args.id!)).code;
  },

  async 'hosts list'(ctx) {
    const limit = positiveInt(ctx.values.limit, '--limit', 1000);
    const list = await ctx.nebula.hosts.list.query({
      ...(ctx.values.app ? { app: ctx.values.app } : {}),
      ...(ctx.values.status ? { status: ctx.values.status as 'online' | 'offline' } : {}),
      ...(limit ? { limit } : {}),
      ...(ctx.values.after ? { after: ctx.values.after } : {}),
    });
    if (ctx.json) {
      printJson(ctx, list);
      return EXIT.ok;
    }
    const running = (h: Host) => h.running.map((r) => `${r.app}@${r.revision ?? '-'}(${r.containers.filter((c) => c.state === 'running').length}/${r.containers.length})`).join(' ');
    print(
      ctx,
      list.hosts.length === 0
        ? 'no hosts'
        : table(['ID', 'STATUS', 'APPS', 'RUNNING', 'CORES', 'MEMORY', 'VERSION', 'LAST SEEN'], list.hosts.map((h) => [h.id, h.status, h.apps.join(','), running(h), h.cores, `${h.memory_mb}MB`, h.worker_version, ago(h.last_seen)])),
    );
    if (list.next) ctx.io.err.write(`more: nebula hosts list --after ${list.next}\n`);
    return EXIT.ok;
  },

  async 'hosts get'(ctx) {
    const h = await ctx.nebula.hosts.get.query({ id: ctx.args.host! });
    if (ctx.json) {
      printJson(ctx, h);
      return EXIT.ok;
    }
    print(ctx, keyValues([
      ['id', h.id],
      ['status', h.status],
      ['apps', h.apps.join(', ')],
      ['cores', h.cores],
      ['memory', `${h.memory_mb}MB`],
      ['worker version', h.worker_version],
      ['heartbeat every', `${h.heartbeat_interval_seconds}s`],
      ['first seen', `${h.first_seen} (${ago(h.first_seen)})`],
      ['last seen', `${h.last_seen} (${ago(h.last_seen)})`],
      [h.status === 'online' ? 'offline after' : 'offline since', `${h.offline_after} (${ago(h.offline_after)})`],
    ]));
    if (h.running.length > 0) {
      print(ctx, '');
      print(ctx, table(['APP', 'INCARNATION', 'REVISION', 'CONTAINERS'], h.running.map((r) => [r.app, r.incarnation, r.revision, r.containers.map((c) => `${c.name}:${c.state}`).join(' ')])));
    }
    return EXIT.ok;
  },
};
