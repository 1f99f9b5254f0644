import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real server (PostgreSQL, say) that can be made a black hole: while
 * frozen it still accepts connections but forwards no byte either way, as a server behind a dead
 * link or a frozen process does (no RST, no FIN: only a deadline notices). Bytes that arrive while
 * frozen are held and delivered on thaw, as TCP retransmission would after a partition heals.
 *
 *   client ──▶ proxy (frozen? hold : forward) ──▶ upstream
 */
export interface BlackHoleProxy {
  /** host:port to connect to instead of the upstream. */
  port: number;
  url(upstreamUrl: string): string;
  freeze(): void;
  thaw(): void;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  close(): Promise<void>;
}

interface Pipe {
  client: Socket;
  upstream: Socket;
  held: Array<{ to: Socket; data: Buffer }>;
}

export async function startBlackHoleProxy(upstreamHost: string, upstreamPort: number): Promise<BlackHoleProxy> {
  let frozen = false;
  const pipes = new Set<Pipe>();
  const forward = (p: Pipe, to: Socket, data: Buffer) => {
    if (frozen) p.held.push({ to, data });
    else to.write(data);
  };
  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPort, upstreamHost);
    const p: Pipe = { client, upstream, held: [] };
    pipes.add(p);
    client.on('data', (d: Buffer) => forward(p, upstream, d));
    upstream.on('data', (d: Buffer) => forward(p, client, d));
    const end = () => {
      pipes.delete(p);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url(upstreamUrl) {
      const u = new URL(upstreamUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const p of pipes) {
        for (const { to, data } of p.held.splice(0)) if (!to.destroyed) to.write(data);
      }
    },
    get connections() {
      return pipes.size;
    },
    async close() {
      for (const p of pipes) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
