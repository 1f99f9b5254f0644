import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * An HTTP proxy in front of a registry that passes `/v2/` and manifests through but stalls blob
 * downloads: it sends the registry's status and headers, then the first `bytesBeforeStall` bytes of
 * the body, then nothing (the connection stays open). That is the fault the engine's own client
 * does not time out on (it gives up on a registry that sends no headers, not on a body that stops).
 *
 *   engine ──▶ 127.0.0.1:<port> ──▶ upstream registry (default 127.0.0.1:5000)
 *              GET /v2/<name>/blobs/<digest>: headers + a few bytes, then silence   (while `stalling`)
 *              everything else: passed through
 *
 * An image reference through it is `127.0.0.1:<port>/<name>:<tag>`; the engine needs no
 * insecure-registry setting for it, as it is on loopback.
 */
export interface StallingRegistry {
  port: number;
  /** `127.0.0.1:<port>`, to put in front of an image name. */
  host: string;
  /** While true, blob downloads stall; set to false to pass them through (a registry that recovers). */
  stalling: boolean;
  /** Blob downloads stalled so far. */
  readonly stalled: number;
  /** Requests seen, as `METHOD path`. */
  readonly requests: string[];
  /** Closes the proxy and every connection it holds open. */
  close(): Promise<void>;
}

const BLOB = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;

export async function startStallingRegistry(opts: { upstream?: string; bytesBeforeStall?: number } = {}): Promise<StallingRegistry> {
  const [upHost = '127.0.0.1', upPort = '5000'] = (opts.upstream ?? '127.0.0.1:5000').split(':');
  const bytesBeforeStall = opts.bytesBeforeStall ?? 64;
  const sockets = new Set<Socket>();
  const held = new Set<IncomingMessage>();
  let stalled = 0;
  const requests: string[] = [];

  const forward = (req: IncomingMessage, res: ServerResponse, stall: boolean) => {
    const up = request(
      { host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: { ...req.headers, host: `${upHost}:${upPort}` } },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (!stall || (upRes.statusCode ?? 0) >= 300) {
          upRes.pipe(res);
          return;
        }
        stalled += 1;
        held.add(upRes);
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          if (sent >= bytesBeforeStall) return;
          const part = chunk.subarray(0, bytesBeforeStall - sent);
          sent += part.length;
          res.write(part);
          if (sent >= bytesBeforeStall) upRes.pause(); // and nothing more, ever: the response never ends
        });
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    forward(req, res, registry.stalling && req.method === 'GET' && BLOB.test((req.url ?? '').split('?')[0] ?? ''));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;

  const registry: StallingRegistry = {
    port,
    host: `127.0.0.1:${port}`,
    stalling: true,
    get stalled() {
      return stalled;
    },
    requests,
    async close() {
      for (const r of held) r.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return registry;
}
