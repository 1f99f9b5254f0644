/**
 * `bash tools/node.sh tools/src/bus-init.ts DIR [--resolver-dir PATH] [--owner UID[:GID]]`: makes an
 * installation's bus keys and credentials in DIR (see libs/bus-auth/src/bus-directory.ts), or keeps
 * the ones there. Prints the paths as `name=path` lines for scripts.
 *
 *   --resolver-dir PATH   the folder the NATS server keeps the accounts in, as the server sees it
 *                         (default DIR/accounts): `/data/accounts` for deploy/compose.yaml's NATS,
 *                         on its volume. A kept directory made with another one is refused.
 *   --owner UID[:GID]     gives api.creds, notifier.creds and control-plane.json to this user (at
 *                         every run): `10001` for the API and notifier images, which run as 10001.
 */
import { parseArgs } from 'node:util';
import { ensureBusDirectory } from '@nebula/bus-auth';

const usage = 'usage: bus-init.ts DIR [--resolver-dir PATH] [--owner UID[:GID]]\n';
function args() {
  try {
    return parseArgs({ allowPositionals: true, options: { 'resolver-dir': { type: 'string' }, owner: { type: 'string' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
}
const { positionals, values } = args();
const dir = positionals[0];
if (!dir || positionals.length > 1) {
  process.stderr.write(usage);
  process.exit(2);
}

/** `10001` or `10001:10001` (the group defaults to the uid). */
function parseOwner(v: string): { uid: number; gid: number } | null {
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(v);
  if (!m) return null;
  const uid = Number(m[1]);
  const gid = m[2] !== undefined ? Number(m[2]) : uid;
  return uid <= 0xffffffff && gid <= 0xffffffff ? { uid, gid } : null;
}

const owner = values.owner !== undefined ? parseOwner(values.owner) : undefined;
if (owner === null) {
  process.stderr.write(`--owner ${values.owner}: want a numeric UID or UID:GID (10001 for the release images)\n`);
  process.exit(2);
}
const resolverDir = values['resolver-dir'];
if (resolverDir !== undefined && !resolverDir.startsWith('/')) {
  process.stderr.write(`--resolver-dir ${resolverDir}: want an absolute path, as the NATS server sees it (/data/accounts in deploy/compose.yaml)\n`);
  process.exit(2);
}

try {
  const d = await ensureBusDirectory(dir, { ...(resolverDir !== undefined ? { resolverDir } : {}), ...(owner ? { serviceOwner: owner } : {}) });
  process.stderr.write(d.created ? `[bus] new keys and credentials in ${dir}\n` : '');
  for (const [k, v] of Object.entries(d)) if (typeof v === 'string') process.stdout.write(`${k}=${v}\n`);
} catch (err) {
  process.stderr.write(`[bus] ERROR: ${(err as Error).message}\n`);
  process.exit(1);
}
