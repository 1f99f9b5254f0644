import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** PEM certificate (chain) and private key the API serves HTTPS with (API_TLS_CERT, API_TLS_KEY). */
export interface ServerTls {
  cert: string | Buffer;
  key: string | Buffer;
}

export type Scheme = 'http' | 'https';

export function schemeOf(tls: ServerTls | undefined): Scheme {
  return tls ? 'https' : 'http';
}

/**
 * The listening socket of the API: plain HTTP, or HTTPS when given a certificate and key (the
 * request handler is the same). Certificates are read once: a new one needs a restart.
 */
export function createListener(tls: ServerTls | undefined, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
  // Keep-alive sockets would hold close() open in tests and on shutdown.
  server.keepAliveTimeout = 5000;
  return server;
}

export async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
