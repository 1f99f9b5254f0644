import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HUB_DOMAIN, hubLeafConfig, issueUserCreds, regionLinkPermissions, regionServerConfig } from '@nebula/bus-auth';
import { startNatsServer, type TestNatsServer } from './nats-server.ts';
import { freePort } from './ports.ts';
import { makeTestCa, type TestCa } from './test-ca.ts';

/**
 * A hub and regions on one machine, each region in a network namespace of its own (root only):
 *
 *   root namespace                                  namespace nb<run><k>
 *   hub nats-server (domain hub) ◀── link veth ───── region leaf server (domain <region>)
 *     leafnodes on 0.0.0.0 (TLS)     10.R.2k.1/.2       clients on 0.0.0.0:4222 (TLS)
 *   the test's hosts ──────────────── client veth ──▶  10.R.2k+1.2
 *
 * `cut()` takes the link veth down: the region's leaf server loses the hub, its hosts keep their
 * server (they reach it over the other veth), as a region whose uplink failed. `heal()` brings it
 * back. One private CA signs a certificate for every address; hosts trust it (`caFile`).
 */
export interface TestRegion {
  name: string;
  /** `tls://10.R.x.2:4222`: where the region's hosts connect. */
  url: string;
  /** The network namespace the leaf server runs in. */
  netns: string;
  cut(): void;
  heal(): void;
  /** Connected to the hub right now (from the hub's monitor: a leaf connection from this region). */
  linked(): Promise<boolean>;
  /** Lines the leaf server printed (for failure messages). */
  output(): string;
}

export interface TestRegions {
  hub: TestNatsServer;
  regions: TestRegion[];
  /** The CA the hosts (and the leaf servers) trust. */
  caFile: string;
  cleanup(): Promise<void>;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe', timeout: 10_000 });

/** Whether this machine can make network namespaces (root, iproute2). */
export function canMakeNetns(): boolean {
  try {
    const probe = `nbprobe${randomInt(1e6)}`;
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return true;
  } catch {
    return false;
  }
}

export async function startNatsRegions(names: readonly string[], opts: { pingSeconds?: number } = {}): Promise<TestRegions> {
  const run = randomInt(1000, 9999);
  // One /16 per run (10.200-249.*.*): two runs at once never share addresses.
  const net = 200 + (run % 50);
  const linkAddr = (k: number, side: 1 | 2) => `10.${net}.${2 * k}.${side}`;
  const clientAddr = (k: number, side: 1 | 2) => `10.${net}.${2 * k + 1}.${side}`;
  const ca: TestCa = makeTestCa({
    altNames: ['IP:127.0.0.1', 'DNS:localhost', ...names.flatMap((_, k) => [`IP:${linkAddr(k, 1)}`, `IP:${clientAddr(k, 2)}`])],
  });
  const ping = `ping_interval: "${opts.pingSeconds ?? 2}s"\nping_max: 2\n`;
  const leafPort = await freePort();
  const monitorPort = await freePort();
  const hub = await startNatsServer({
    config: [
      `jetstream: { domain: ${JSON.stringify(HUB_DOMAIN)} }`,
      hubLeafConfig({ host: '0.0.0.0', port: leafPort, tls: { certFile: ca.certFile, keyFile: ca.keyFile } }),
      `http: "127.0.0.1:${monitorPort}"`,
      ping,
    ].join('\n'),
  });
  const dir = mkdtempSync(join(tmpdir(), 'nebula-regions-'));
  const link = await issueUserCreds(hub.keys, { name: 'region-link', permissions: regionLinkPermissions() });
  writeFileSync(join(dir, 'link.creds'), link.creds, { mode: 0o600 });
  const procs: ChildProcess[] = [];
  const namespaces: string[] = [];
  const regions: TestRegion[] = [];
  const cleanup = async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const ns of namespaces) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    await hub.cleanup();
    rmSync(dir, { recursive: true, force: true });
    ca.remove();
  };
  try {
    for (const [k, name] of names.entries()) {
      const ns = `nb${run}${k}`;
      ip('netns', 'add', ns);
      namespaces.push(ns);
      for (const [kind, addr] of [
        ['l', linkAddr],
        ['c', clientAddr],
      ] as const) {
        const outside = `nb${run}${k}${kind}`;
        const inside = `nb${run}${k}${kind}i`;
        ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
        ip('link', 'set', inside, 'netns', ns);
        ip('addr', 'add', `${addr(k, 1)}/24`, 'dev', outside);
        ip('link', 'set', outside, 'up');
        ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${addr(k, 2)}/24`, 'dev', inside);
        ip('netns', 'exec', ns, 'ip', 'link', 'set', inside, 'up');
      }
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      const rdir = join(dir, name);
      mkdirSync(rdir, { recursive: true });
      const conf = join(rdir, 'nats.conf');
      writeFileSync(
        conf,
        `${regionServerConfig({
          busConfig: hub.busConfig(join(rdir, 'accounts')),
          region: name,
          host: '0.0.0.0',
          clientPort: 4222,
          storeDir: join(rdir, 'jetstream'),
          resolverDir: join(rdir, 'accounts'),
          hubUrls: [`tls://${linkAddr(k, 1)}:${leafPort}`],
          linkCredsFile: join(dir, 'link.creds'),
          accountPublicKey: hub.keys.account_public_key,
          hubCaFile: ca.caFile,
        })}\ntls: { cert_file: ${JSON.stringify(ca.certFile)}, key_file: ${JSON.stringify(ca.keyFile)} }\n${ping}`,
      );
      let out = '';
      const p = spawn('ip', ['netns', 'exec', ns, 'nats-server', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      procs.push(p);
      const linkDev = `nb${run}${k}l`;
      const region: TestRegion = {
        name,
        url: `tls://${clientAddr(k, 2)}:4222`,
        netns: ns,
        cut: () => ip('link', 'set', linkDev, 'down'),
        heal: () => ip('link', 'set', linkDev, 'up'),
        async linked() {
          const res = await fetch(`http://127.0.0.1:${monitorPort}/leafz`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
          if (!res?.ok) return false;
          const body = (await res.json()) as { leafs?: Array<{ ip?: string }> };
          return (body.leafs ?? []).some((l) => l.ip === linkAddr(k, 2));
        },
        output: () => out,
      };
      regions.push(region);
    }
    for (const r of regions) {
      const deadline = Date.now() + 20_000;
      while (!(await r.linked())) {
        if (Date.now() > deadline) throw new Error(`region ${r.name} did not link to the hub: ${r.output().slice(-2000)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { hub, regions, caFile: ca.caFile, cleanup };
}
