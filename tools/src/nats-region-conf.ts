/**
 * `bash tools/node.sh tools/src/nats-region-conf.ts BUS_DIR OUT_DIR REGION --hub URL[,URL...] [--hub-ca FILE]
 *   [--host ADDR] [--client-port P] [--monitor-port P]`:
 * writes what a region's leaf server needs (see libs/bus-auth region-config.ts): OUT_DIR/REGION.conf
 * (the bus's operator and accounts, JetStream domain REGION, one remote to the hub's leaf listeners)
 * and OUT_DIR/REGION-link.creds (mode 600: the link's user, regionLinkPermissions), with the region's
 * JetStream data and accounts under OUT_DIR/REGION/. Add the server's own `tls { ... }` for its hosts.
 * Prints the config's path.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { busDirectoryPaths, issueUserCreds, readControlPlaneKeys, regionLinkPermissions, regionServerConfig } from '@nebula/bus-auth';

const usage = 'usage: nats-region-conf.ts BUS_DIR OUT_DIR REGION --hub URL[,URL...] [--hub-ca FILE] [--host ADDR] [--client-port P] [--monitor-port P]\n';
function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}`);
  process.exit(2);
}
type Opt = 'hub' | 'hub-ca' | 'host' | 'client-port' | 'monitor-port';
let parsed: ReturnType<typeof parseArgs<{ allowPositionals: true; options: Record<Opt, { type: 'string' }> }>>;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      hub: { type: 'string' },
      'hub-ca': { type: 'string' },
      host: { type: 'string' },
      'client-port': { type: 'string' },
      'monitor-port': { type: 'string' },
    },
  });
} catch (err) {
  fail((err as Error).message);
}
const { positionals, values } = parsed;
const [busDir, outDir, region] = positionals;
if (!busDir || !outDir || !region || positionals.length !== 3) fail('three arguments');
if (!values.hub) fail("--hub: the hub servers' leaf listeners (tls://hub.example:7422)");
const port = (name: 'client-port' | 'monitor-port', fallback: number | undefined) => {
  if (values[name] === undefined) return fallback;
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 1 || v > 65_535) fail(`--${name} ${values[name]}: not a port`);
  return v;
};
const paths = busDirectoryPaths(busDir);
const keys = readControlPlaneKeys(paths.controlPlaneKeys);
const dataDir = join(outDir, region);
const credsFile = join(outDir, `${region}-link.creds`);
let conf: string;
try {
  conf = regionServerConfig({
    busConfig: readFileSync(paths.natsConf, 'utf8'),
    region,
    host: values.host ?? '0.0.0.0',
    clientPort: port('client-port', 4222) as number,
    monitorPort: port('monitor-port', undefined),
    storeDir: join(dataDir, 'jetstream'),
    resolverDir: join(dataDir, 'accounts'),
    hubUrls: values.hub.split(',').map((s) => s.trim()),
    linkCredsFile: credsFile,
    accountPublicKey: keys.account_public_key,
    hubCaFile: values['hub-ca'],
  });
} catch (err) {
  fail((err as Error).message);
}
mkdirSync(join(dataDir, 'jetstream'), { recursive: true });
mkdirSync(join(dataDir, 'accounts'), { recursive: true, mode: 0o700 });
const link = await issueUserCreds(keys, { name: `region-${region}`, permissions: regionLinkPermissions() });
writeFileSync(credsFile, link.creds, { mode: 0o600 });
const out = join(outDir, `${region}.conf`);
writeFileSync(out, conf, { mode: 0o644 });
process.stdout.write(`${out}\n`);
