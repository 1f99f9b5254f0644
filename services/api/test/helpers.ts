import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type StreamInfo } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { busConnectOptions } from '@nebula/bus-auth';
import { type AppMessage, appMessageSchema, streams } from '@nebula/contracts';
import { createDb, createTestDatabase, type Database, type Kysely } from '@nebula/db';
import { decode } from '@nebula/messaging';
import { createLogger } from '@nebula/service-kit';
import { startNatsServer, type TestNatsServer } from '@nebula/test-kit';
import { joinBus } from '@nebula/worker';
import { type ApiServer, type ApiServerOptions, type AuthSettings, createApiServer } from '../src/index.ts';

/** Test environment: a throwaway database, a nats-server of its own, and API instances on free ports. */
export interface TestEnv {
  dbUrl: string;
  db: Kysely<Database>;
  nats: TestNatsServer;
  /** The test's own connection, as the admin user (every right: it looks into the streams). */
  nc: NatsConnection;
  /** NATS_URL, NATS_CREDS (the api user's creds) and BUS_KEYS_FILE for an API process, as files of mode 600. */
  busVars: Record<'NATS_URL' | 'NATS_CREDS' | 'BUS_KEYS_FILE', string>;
  apis: ApiServer[];
  /** `ownDb`: the instance gets a pool of its own (returned as `db`), e.g. to break it. */
  /** `db`: the instance uses this pool (e.g. one through a proxy the test controls). */
  startApi(opts?: {
    auth?: AuthSettings;
    maxBodyBytes?: number;
    ownDb?: boolean;
    db?: Kysely<Database>;
    relay?: ApiServerOptions['relay'];
    server?: Partial<ApiServerOptions>;
    /** Creds file text the instance connects with instead of the api user's (other rights). */
    natsCreds?: string;
  }): Promise<ApiServer & { db: Kysely<Database> }>;
  close(): Promise<void>;
}

export const ADMIN = { user: 'admin', password: `pw-${randomBytes(6).toString('hex')}` };
export const TOKEN = `tok-${randomBytes(12).toString('hex')}`;
export const defaultAuth: AuthSettings = { basic: { user: ADMIN.user, password: ADMIN.password }, token: TOKEN };
export const basicHeader = (user = ADMIN.user, password = ADMIN.password) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export const silentLog = createLogger('api-test', process.env.TEST_LOG_LEVEL ?? 'silent');

/** A connection to the test's secured server as one of its identities (anonymous ones are refused). */
export async function natsConnect(nats: TestNatsServer, who: 'api' | 'notifier' | 'admin' = 'admin'): Promise<NatsConnection> {
  return connect(nats.connectOptions(who, { maxReconnectAttempts: -1, reconnectTimeWait: 100, waitOnFirstConnect: true }));
}

/** The files an API process reads its bus identity from (NATS_CREDS, BUS_KEYS_FILE), in a folder of its own. */
export function writeBusFiles(nats: TestNatsServer): { vars: Record<'NATS_URL' | 'NATS_CREDS' | 'BUS_KEYS_FILE', string>; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-api-bus-'));
  const creds = join(dir, 'api.creds');
  const keys = join(dir, 'keys.json');
  writeFileSync(creds, nats.creds.api, { mode: 0o600 });
  writeFileSync(keys, JSON.stringify(nats.keys), { mode: 0o600 });
  return { vars: { NATS_URL: nats.url, NATS_CREDS: creds, BUS_KEYS_FILE: keys }, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `natsConfig`: configuration text for the nats-server (a small max_payload, permissions...). */
export async function startEnv(opts: { natsConfig?: string } = {}): Promise<TestEnv> {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url, 5);
  const nats = await startNatsServer(opts.natsConfig === undefined ? {} : { config: opts.natsConfig });
  const nc = await natsConnect(nats);
  const files = writeBusFiles(nats);
  const apis: ApiServer[] = [];
  const conns: NatsConnection[] = [];
  return {
    dbUrl: tdb.url,
    db,
    nats,
    nc,
    busVars: files.vars,
    apis,
    async startApi(opts = {}) {
      // Each instance has a connection of its own, as separate replicas would.
      const own = opts.natsCreds
        ? await connect({
            ...busConnectOptions({ servers: [nats.url], creds: opts.natsCreds, name: 'api' }),
            maxReconnectAttempts: -1,
            reconnectTimeWait: 100,
            waitOnFirstConnect: true,
          })
        : await natsConnect(nats, 'api');
      conns.push(own);
      const apiDb = opts.db ?? (opts.ownDb ? createDb(tdb.url, 2) : db);
      const api = await createApiServer({
        db: apiDb,
        databaseUrl: tdb.url,
        nc: own,
        log: silentLog,
        auth: opts.auth ?? defaultAuth,
        maxBodyBytes: opts.maxBodyBytes ?? 64 * 1024,
        relay: { lockPollMs: 100, pollMs: 200, maxBackoffMs: 300, ...opts.relay },
        ...opts.server,
        keys: nats.keys,
        hosts: { servers: [nats.url], revocationRetryMs: 200, ...opts.server?.hosts },
      });
      apis.push(api);
      return { ...api, db: apiDb };
    },
    async close() {
      for (const a of apis) await a.close().catch(() => undefined);
      for (const c of [...conns, nc]) await c.close().catch(() => undefined);
      await db.destroy();
      await nats.cleanup();
      await tdb.drop();
      files.remove();
    },
  };
}

/**
 * A host for tests that run a worker in this process: it joins through the API's own route with a
 * join token (its own key, its credential in a temporary file) and connects with that credential,
 * as a real worker does. `close()` stops its renewals and closes its connection.
 */
export async function joinHost(apiUrl: string, nats: TestNatsServer, hostId: string, apps: string[], opts: { ackWaitSeconds?: number } = {}) {
  const token = await http(apiUrl, 'POST', '/api/v2/hosts/join_tokens', { body: { uses: 1, apps } });
  if (token.status !== 200) throw new Error(`join token: ${token.status} ${token.text}`);
  const dir = mkdtempSync(join(tmpdir(), 'nebula-host-'));
  const bus = await joinBus({
    hostId,
    apps,
    credentialsFile: join(dir, 'credentials.json'),
    nebulaUrl: apiUrl,
    joinToken: (token.body as { token: string }).token,
    consumer: { ack_wait_seconds: opts.ackWaitSeconds ?? 5 },
    timeoutMs: 5000,
    log: createLogger('test-host', 'silent'),
    servers: [nats.url],
    connect: { reconnectTimeWait: 100 },
  });
  return {
    ...bus,
    async close() {
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function uniqueName(prefix = 'app'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Every message in the APPS stream (optionally of one app), in stream order. */
export async function streamMessages(nc: NatsConnection, app?: string): Promise<Array<AppMessage & { seq: number }>> {
  const jsm = await jetstreamManager(nc);
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(streams.apps.name);
  } catch {
    return [];
  }
  const out: Array<AppMessage & { seq: number }> = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    try {
      const m = await jsm.streams.getMessage(streams.apps.name, { seq });
      if (!m) continue;
      const msg = decode(appMessageSchema, m.data, m.subject);
      if (app === undefined || msg.app === app) out.push({ ...msg, seq });
    } catch {
      // deleted (per-subject limit): skip
    }
  }
  return out;
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

/** A request whose answer must be JSON: fails the test otherwise. */
export async function http(
  base: string,
  method: string,
  path: string,
  opts: { body?: string | object; auth?: string | null; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth !== null) headers.authorization = opts.auth ?? basicHeader();
  let body: string | undefined;
  if (opts.body !== undefined) body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  // Every change is JSON, with a body or not (the API refuses others: http/cross-site.ts).
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) headers['content-type'] ??= 'application/json';
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('application/json')) throw new Error(`${method} ${path}: ${res.status} answered ${type || 'no content type'}: ${text.slice(0, 200)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${method} ${path}: ${res.status} body is not JSON: ${text.slice(0, 200)}`);
  }
  if (/\bat .*\.(ts|js):\d+/.test(text)) throw new Error(`${method} ${path}: body carries a stack trace: ${text.slice(0, 300)}`);
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export interface ApiProcess {
  url: string;
  port: number;
  proc: import('node:child_process').ChildProcess;
  output(): string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

/** The API as a real process (`node services/api/src/main.ts`), on a free port. */
export async function spawnApi(vars: Record<string, string>, opts: { waitHealthy?: boolean } = {}): Promise<ApiProcess> {
  const { spawn } = await import('node:child_process');
  const { freePort } = await import('@nebula/test-kit');
  const port = await freePort();
  const proc = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', API_PORT: String(port), API_HOST: '127.0.0.1', LOG_LEVEL: 'info', ...vars },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const p: ApiProcess = {
    url,
    port,
    proc,
    output: () => out,
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
  if (opts.waitHealthy !== false) {
    const { waitFor } = await import('@nebula/test-kit');
    await waitFor(
      `api process on ${port} healthy`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`api exited ${proc.exitCode}: ${out}`);
        return (await fetch(`${url}/health`)).status === 200;
      },
      20_000,
      100,
    );
  }
  return p;
}

/** Worker options with short waits, for the tests that run real worker code (in-memory runtime) beside the API. */
export const FAST_WORKER = {
  heartbeatIntervalMs: 500,
  ackWaitMs: 5_000,
  fetchExpiresMs: 1_000,
  retryBaseMs: 100,
  retryMaxMs: 400,
  rollSettleMs: 0,
  settleMs: 100,
  pollMs: 5,
  healthCheckIntervalMs: 1_000,
  stopTimeoutSeconds: 0,
};
