/**
 * `bash tools/node.sh tools/src/nats-cluster-conf.ts BUS_DIR OUT_DIR N [--client-port P] [--cluster-port P] [--monitor-port P]`:
 * writes OUT_DIR/n1.conf ... nN.conf, the nats.conf of each server of a local N-server cluster
 * (libs/bus-auth clusterServerConfig: the bus's operator and accounts, routes to the others, each
 * server's JetStream data and accounts under OUT_DIR/n<i>/). Ports: P, P+1, ... (defaults 4222,
 * 6222, 8222). Prints one `name client_port monitor_port conf` line per server, for tools/stack.sh.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { busDirectoryPaths, clusterServerConfig, localClusterNodes } from '@nebula/bus-auth';

const usage = 'usage: nats-cluster-conf.ts BUS_DIR OUT_DIR N [--client-port P] [--cluster-port P] [--monitor-port P]\n';
function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}`);
  process.exit(2);
}
let parsed: ReturnType<typeof parseArgs<{ allowPositionals: true; options: Record<'client-port' | 'cluster-port' | 'monitor-port', { type: 'string' }> }>>;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: { 'client-port': { type: 'string' }, 'cluster-port': { type: 'string' }, 'monitor-port': { type: 'string' } },
  });
} catch (err) {
  fail((err as Error).message);
}
const { positionals, values } = parsed;
const [busDir, outDir, count] = positionals;
if (!busDir || !outDir || !count || positionals.length !== 3) fail('three arguments');
const n = Number(count);
if (!Number.isInteger(n) || n < 1 || n > 9) fail(`N ${count}: want 1 to 9 servers`);
const port = (name: 'client-port' | 'cluster-port' | 'monitor-port', fallback: number) => {
  const v = values[name] === undefined ? fallback : Number(values[name]);
  if (!Number.isInteger(v) || v < 1 || v + n > 65_535) fail(`--${name} ${values[name]}: not a port`);
  return v;
};
const nodes = localClusterNodes(n, {
  dir: outDir,
  clientPort: port('client-port', 4222),
  clusterPort: port('cluster-port', 6222),
  monitorPort: port('monitor-port', 8222),
});
const busConfig = readFileSync(busDirectoryPaths(busDir).natsConf, 'utf8');
for (const [i, node] of nodes.entries()) {
  mkdirSync(node.storeDir, { recursive: true });
  mkdirSync(node.resolverDir, { recursive: true, mode: 0o700 });
  const conf = join(outDir, `${node.name}.conf`);
  writeFileSync(conf, clusterServerConfig({ busConfig, nodes, index: i }), { mode: 0o644 });
  process.stdout.write(`${node.name} ${node.clientPort} ${node.monitorPort} ${conf}\n`);
}
