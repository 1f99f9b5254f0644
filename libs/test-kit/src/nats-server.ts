import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from '@nats-io/transport-node';
import { busConnectOptions, type ControlPlaneKeys, createBusSetup, hostInboxPrefix } from '@nebula/bus-auth';
import { freePort } from './ports.ts';
import { issueHostCreds, serviceCreds } from './test-creds.ts';

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
  /** SIGSTOP: connections stay open, nothing answers (a hung server). `thaw()` sends SIGCONT. */
  freeze(): void;
  thaw(): void;
  /** The installation's keys, as the control plane holds them (the server runs in operator mode). */
  keys: ControlPlaneKeys;
  /** The bus's nats.conf text with another resolver folder: for other servers of the same installation (a region's). */
  busConfig(resolverDir: string): string;
  /** Creds file texts of the services and of an admin user (every right in the NEBULA account). */
  creds: { api: string; notifier: string; admin: string };
  /** Connection options for one of the identities above, or for a host's creds. */
  connectOptions(who: 'api' | 'notifier' | 'admin' | HostCreds, extra?: ConnectionOptions): ConnectionOptions;
  /** A host's credential as the control plane issues it at join: its own key, its own rights. */
  hostCreds(hostId: string, apps: readonly string[], opts?: { expiresAt?: Date }): Promise<HostCreds>;
}

export interface HostCreds {
  hostId: string;
  creds: string;
  /** The host's public key (`U...`): what it signs results and heartbeats with. */
  publicKey: string;
  seed: string;
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
 * own data folder: each test file gets a server of its own, which it may stop and restart. It runs
 * with security on, as users run it: operator mode with keys of its own, no anonymous connection.
 */
export async function startNatsServer(opts: { port?: number; config?: string } = {}): Promise<TestNatsServer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'nebula-nats-'));
  // `config`: nats-server configuration text (e.g. `max_payload: 8192`, users and permissions); the
  // address, port and JetStream folder given on the command line win over it.
  const setup = await createBusSetup();
  writeFileSync(join(dir, 'nats.conf'), `${setup.serverConfig(join(dir, 'accounts'))}\n${opts.config ?? ''}\n`);
  const configArgs = ['-c', join(dir, 'nats.conf')];
  const keys = setup.keys;
  const creds = await serviceCreds(keys);
  let proc: ChildProcess | null = null;
  let output = '';
  const url = `nats://127.0.0.1:${port}`;
  const server: TestNatsServer = {
    url,
    port,
    keys,
    creds,
    busConfig: (resolverDir) => setup.serverConfig(resolverDir),
    connectOptions(who, extra = {}) {
      const c = typeof who === 'string' ? creds[who] : who.creds;
      const inboxPrefix = typeof who === 'string' ? undefined : hostInboxPrefix(who.hostId);
      return {
        ...busConnectOptions({ servers: [url], creds: c, name: typeof who === 'string' ? who : who.hostId, ...(inboxPrefix ? { inboxPrefix } : {}) }),
        ...extra,
      };
    },
    hostCreds: (hostId, apps, o = {}) => issueHostCreds(keys, hostId, apps, o),
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
    freeze() {
      proc?.kill('SIGSTOP');
    },
    thaw() {
      proc?.kill('SIGCONT');
    },
    async cleanup() {
      server.thaw();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
