import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export interface TestNatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Stops the server (its JetStream data is kept until `cleanup()`). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data: for "NATS restarted" tests. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  cleanup(): Promise<void>;
}

async function waitForPort(port: number, proc: ChildProcess, log: () => string): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited (${proc.exitCode}): ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok && log().includes('Server is ready')) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server did not start on ${port}: ${log()}`);
}

/**
 * A real nats-server with JetStream (the binary the local stack installed), on a free port with its
 * own data folder: each test file gets a server of its own, which it may stop and restart.
 */
export async function startNatsServer(opts: { port?: number; config?: string } = {}): Promise<TestNatsServer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'nebula-nats-'));
  // `config`: nats-server configuration text (e.g. `max_payload: 8192`, users and permissions); the
  // address, port and JetStream folder given on the command line win over it.
  const configArgs: string[] = [];
  if (opts.config !== undefined) {
    writeFileSync(join(dir, 'nats.conf'), opts.config);
    configArgs.push('-c', join(dir, 'nats.conf'));
  }
  let proc: ChildProcess | null = null;
  let output = '';
  const server: TestNatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    async start() {
      if (proc && proc.exitCode === null) return;
      output = '';
      const p = spawn('nats-server', [...configArgs, '-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      p.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      proc = p;
      await waitForPort(port, p, () => output);
    },
    async stop() {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
        setTimeout(() => p.kill('SIGKILL'), 5000).unref();
      });
    },
    async cleanup() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
