/**
 * `bash tools/node.sh tools/src/bus-init.ts DIR`: makes an installation's bus keys and credentials in
 * DIR (see libs/bus-auth/src/bus-directory.ts), or keeps the ones there. Prints the paths as
 * `name=path` lines for scripts.
 */
import { ensureBusDirectory } from '@nebula/bus-auth';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: bus-init.ts DIR\n');
  process.exit(2);
}
const d = await ensureBusDirectory(dir);
process.stderr.write(d.created ? `[bus] new keys and credentials in ${dir}\n` : '');
for (const [k, v] of Object.entries(d)) if (typeof v === 'string') process.stdout.write(`${k}=${v}\n`);
