import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface HealthReport {
  ok: boolean;
  /** Per dependency: true when it answers. */
  checks: Record<string, boolean>;
  /** Where a service that starts in steps is (e.g. the worker's `starting` while it waits for the streams). */
  state?: string;
}

export type HealthCheck = () => HealthReport | Promise<HealthReport>;

/** A metrics registry with Node's default process metrics, labelled with the service name. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Answers `GET /health` (200 when healthy, 503 otherwise, JSON either way) and `GET /metrics`
 * (Prometheus text). Returns false for any other request so a service can serve its own routes.
 */
export function handleOpsRequest(req: IncomingMessage, res: ServerResponse, opts: { registry: Registry; health: HealthCheck }): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (path === '/health' || path === '/healthz') {
    Promise.resolve()
      .then(opts.health)
      .then(
        (report) => send(res, report.ok ? 200 : 503, 'application/json', JSON.stringify(report)),
        () => send(res, 503, 'application/json', JSON.stringify({ ok: false, checks: {} })),
      );
    return true;
  }
  if (path === '/metrics') {
    opts.registry.metrics().then(
      (text) => send(res, 200, opts.registry.contentType, text),
      () => send(res, 500, 'application/json', '{"error":"metrics unavailable"}'),
    );
    return true;
  }
  return false;
}

function send(res: ServerResponse, status: number, type: string, body: string) {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A server with only /health and /metrics, for services that have no HTTP API of their own. */
export async function startOpsServer(opts: {
  port: number;
  host?: string;
  registry: Registry;
  health: HealthCheck;
}): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (!handleOpsRequest(req, res, opts)) send(res, 404, 'application/json', '{"error":"not found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
