import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import { type Database, type Kysely, migrateToLatest, pingDb } from '@nebula/db';
import { createMetricsRegistry, handleOpsRequest, type Logger } from '@nebula/service-kit';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { TRPCError } from '@trpc/server';
import { Gauge } from 'prom-client';
import { createOpenApiNodeHttpHandler } from 'trpc-to-openapi';
import { authenticate, type AuthSettings, type Identity, WWW_AUTHENTICATE } from '../auth.ts';
import { OutboxRelay, oldestUnpublishedSeconds } from '../db/outbox-relay.ts';
import { jetStreamPublisher } from '../publisher.ts';
import { appRouter } from '../routers/_app.ts';
import type { Context, Meta } from '../trpc.ts';
import { isPlainObject, parseJson, readBody } from './body.ts';
import { openApiDocument } from './openapi.ts';
import { handleV2 } from './v2-routes.ts';

/**
 * The API's HTTP server:
 *
 *   /health                 open (ops)
 *   everything else         auth (basic or bearer) -> 401 JSON with WWW-Authenticate
 *   /metrics                Prometheus
 *   /openapi.json           the generated OpenAPI document
 *   /trpc/<procedure>       tRPC (the typed client)
 *   /api/v2/...             the original's routes (v2-routes.ts), then the generated REST routes
 *
 * Bodies are read here, once, with a size limit (413), and every answer is JSON.
 */
export interface ApiServerOptions {
  db: Kysely<Database>;
  /** For the outbox relay's own session (advisory lock + LISTEN). */
  databaseUrl: string;
  nc: NatsConnection;
  log: Logger;
  auth: AuthSettings;
  port?: number;
  host?: string;
  maxBodyBytes?: number;
  offlineAfterMissedHeartbeats?: number;
  /** How often a `rollouts.watch` subscription re-reads progress (default 500 ms). */
  watchPollMs?: number;
  relay?: { lockPollMs?: number; pollMs?: number; maxBackoffMs?: number; streamCheckMs?: number };
}

export interface ApiServer {
  server: Server;
  port: number;
  url: string;
  relay: OutboxRelay;
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function procedureMeta(path: string | undefined): Meta | undefined {
  if (!path) return undefined;
  const procs = appRouter._def.procedures as unknown as Record<string, { _def: { meta?: Meta } }>;
  return procs[path]?._def.meta;
}

export async function createApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const { db, log, auth } = opts;
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const settings = {
    offlineAfterMissedHeartbeats: opts.offlineAfterMissedHeartbeats ?? 3,
    watchPollMs: opts.watchPollMs ?? 500,
    maxMessageBytes: () => opts.nc.info?.max_payload,
  };
  await migrateToLatest(db);
  // Ends open subscriptions (server-sent event streams) at close, which would otherwise hold it open.
  const stopping = new AbortController();

  const identities = new WeakMap<IncomingMessage, Identity>();
  const contextFor = (req: IncomingMessage): Context => ({ db, log, identity: identities.get(req) ?? null, settings, stopping: stopping.signal });
  const logUnexpected = ({ error, path }: { error: TRPCError; path?: string | undefined }) => {
    if (error.code === 'INTERNAL_SERVER_ERROR') log.error({ err: error.cause ?? error, path }, 'unexpected error in a procedure');
  };

  const trpcHandler = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    createContext: ({ req }) => contextFor(req),
    onError: logUnexpected,
  });
  const restHandler = createOpenApiNodeHttpHandler({
    router: appRouter,
    createContext: ({ req }: { req: IncomingMessage }) => contextFor(req),
    onError: logUnexpected,
    responseMeta: ({ paths, errors, data }) => {
      if (errors.length > 0) return {};
      const meta = procedureMeta(paths?.[0]);
      const first = data[0] as { rollout_id?: unknown } | undefined;
      const headers: Record<string, string> = {};
      if (typeof first?.rollout_id === 'string') headers['x-nebula-rollout-id'] = first.rollout_id;
      return { status: meta?.successStatus ?? 200, headers };
    },
  });

  const publisher = jetStreamPublisher(opts.nc);
  try {
    await publisher.ensure();
  } catch (err) {
    // Not fatal: the relay ensures the stream again before it publishes.
    log.warn({ err }, 'could not ensure the APPS stream at start; will retry before publishing');
  }
  const relay = new OutboxRelay({ databaseUrl: opts.databaseUrl, publisher, log, ...opts.relay });
  const registry = createMetricsRegistry('api');
  new Gauge({
    name: 'nebula_api_outbox_relay_active',
    help: '1 while this replica holds the outbox relay lock and publishes',
    registers: [registry],
    collect() {
      this.set(relay.state === 'active' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'nebula_api_outbox_published',
    help: 'Outbox rows this replica published since it started',
    registers: [registry],
    collect() {
      this.set(relay.published);
    },
  });
  new Gauge({
    name: 'nebula_api_outbox_dead_lettered',
    help: 'Outbox rows this replica dead-lettered (could never be published) since it started',
    registers: [registry],
    collect() {
      this.set(relay.deadLettered);
    },
  });
  new Gauge({
    name: 'nebula_outbox_oldest_unpublished_seconds',
    help: 'Age of the oldest outbox row still waiting to be published (dead letters left out); 0 when none waits',
    registers: [registry],
    async collect() {
      this.set(await oldestUnpublishedSeconds(db).catch(() => Number.NaN));
    },
  });
  const health = async () => {
    const checks = { postgres: await pingDb(db), nats: !opts.nc.isClosed() };
    return { ok: Object.values(checks).every(Boolean), checks };
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/health' || path === '/healthz') {
      if (handleOpsRequest(req, res, { registry, health })) return;
      return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' });
    }
    const identity = authenticate(auth, req.headers.authorization);
    // One debug line per request: never headers or query (credentials, tRPC inputs), only the path.
    const started = Date.now();
    res.once('finish', () => {
      const fields = { method, path, status: res.statusCode, ms: Date.now() - started, user: identity?.name, credentials: identity ? undefined : req.headers.authorization === undefined ? 'none' : 'rejected' };
      log.debug(fields, 'request');
    });
    if (identity === null) {
      return sendJson(res, 401, { error: 'unauthorized', message: 'basic or bearer credentials are required' }, { 'www-authenticate': WWW_AUTHENTICATE });
    }
    identities.set(req, identity);
    if (path === '/metrics') {
      if (handleOpsRequest(req, res, { registry, health })) return;
      return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' });
    }

    const body = await readBody(req, maxBody);
    if (body.kind !== 'ok') {
      const headers: Record<string, string> = body.kind === 'abusive' ? { connection: 'close' } : {};
      sendJson(res, 413, { error: 'payload too large', limit_bytes: maxBody }, headers);
      if (body.kind === 'abusive') res.once('finish', () => req.destroy());
      return;
    }

    if (path === '/openapi.json') {
      if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' });
      return sendJson(res, 200, openApiDocument());
    }

    if (path === '/trpc' || path.startsWith('/trpc/')) {
      (req as IncomingMessage & { body?: unknown }).body = body.raw === '' ? undefined : body.raw;
      // tRPC labels some of its JSON error bodies text/plain (415...): every answer here is JSON,
      // except the event streams of subscriptions.
      const setHeader = res.setHeader.bind(res);
      res.setHeader = (name, value) => setHeader(name, name.toLowerCase() === 'content-type' && value !== 'text/event-stream' ? 'application/json' : value);
      return trpcHandler(req, res);
    }

    if (path === '/api/v2' || path.startsWith('/api/v2/')) {
      let segments: string[];
      try {
        segments = path.slice('/api/v2/'.length).split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
      } catch {
        return sendJson(res, 400, { errors: { name: ['malformed percent-encoding in the path'] } });
      }
      const json = parseJson(body.raw);
      const match = await handleV2(method, segments, json, appRouter.createCaller(contextFor(req)));
      if (match.kind === 'handled') return sendJson(res, match.response.status, match.response.body, match.response.headers);
      if (match.kind === 'none') return sendJson(res, 404, { error: 'not found' });
      // A generated route: hand over the parsed body (the library would re-read the stream).
      if (json.kind === 'malformed') return sendJson(res, 400, { errors: { '(body)': [json.reason] } });
      if (json.kind === 'json' && !isPlainObject(json.value)) return sendJson(res, 400, { errors: { '(body)': ['must be a JSON object'] } });
      if (json.kind === 'json' && isPlainObject(json.value) && ('name' in json.value || 'id' in json.value)) {
        return sendJson(res, 400, { errors: { [('name' in json.value) ? 'name' : 'id']: ['unknown field (it comes from the URL)'] } });
      }
      const r = req as IncomingMessage & { body?: unknown };
      r.body = json.kind === 'json' ? json.value : undefined;
      // Bodyless actions (curl -X POST, the SDK's empty bodies) need no content type.
      if (json.kind === 'empty') req.headers['content-type'] = 'application/json';
      return restHandler(r, res);
    }

    return sendJson(res, 404, { error: 'not found' });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err, method: req.method, path: (req.url ?? '').split('?')[0] }, 'unexpected error handling a request');
      sendJson(res, 500, { error: 'internal server error' });
    });
  });
  // Keep-alive sockets would hold close() open in tests and on shutdown.
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  relay.start();
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    relay,
    async close() {
      stopping.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // A stream that just ended leaves its keep-alive socket behind: do not wait for its timeout.
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      });
      await relay.stop();
    },
  };
}
