/**
 * `npm run release`: the release build of every service (api, notifier, worker, cli).
 *
 *   npm run release                       bundles (dist/<svc>/) and images (nebula/<svc>:<version>, :latest)
 *   npm run release -- --bundles-only     only the bundles
 *   npm run release -- --base node:24-slim    build on that base (or NEBULA_BASE_IMAGE=...), pulled if missing
 *   npm run release -- --json             print what was built as JSON (for scripts and tests)
 *   npm run release -- --help             this text
 *
 *   bundles ─▶ base image ─▶ one image per service ─▶ table: image, tags, id, size, built or reused
 *
 * Each step is skipped when its inputs did not change (bundle.ts, images.ts). The base: --base or
 * NEBULA_BASE_IMAGE when set; else node:24-slim when it is on this engine already; else
 * nebula/node-base:24, made from this machine's Node 24 (base-image.ts): nothing is pulled unless asked.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BaseImage, ensureLocalBase, imageId } from './base-image.ts';
import { type BundleResult, bundleService } from './bundle.ts';
import { exec, tryExec } from './exec.ts';
import { buildImage } from './images.ts';
import { type BuildInfo, formatBytes, formatTable, LOCAL_BASE, OFFICIAL_BASE, type ReleaseRow, releaseTable, SERVICES } from './plan.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

const { values } = parseArgs({
  options: {
    'bundles-only': { type: 'boolean', default: false },
    base: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  const head = /^\/\*\*\n([\s\S]*?)\*\//.exec(readFileSync(import.meta.filename, 'utf8'))?.[1] ?? '';
  console.log(head.replace(/^ \* ?/gm, '').trimEnd());
  process.exit(0);
}

const log = (s: string) => process.stderr.write(`[release] ${s}\n`);

async function buildInfo(): Promise<BuildInfo> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; license?: string; repository?: string | { url?: string } };
  const head = (await tryExec('git', ['rev-parse', 'HEAD'], { cwd: ROOT, timeoutMs: 10_000 }))?.trim();
  const dirty = ((await tryExec('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, timeoutMs: 10_000 })) ?? '').trim() !== '';
  const source = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
  if (!source) log('package.json has no "repository": the images\' org.opencontainers.image.source says "unknown"');
  if (!pkg.license) log('package.json has no "license": the images\' org.opencontainers.image.licenses says "NOASSERTION"');
  return {
    version: pkg.version,
    revision: head ? `${head}${dirty ? '-dirty' : ''}` : 'unknown',
    created: new Date().toISOString(),
    source: source ?? 'unknown',
    licenses: pkg.license ?? 'NOASSERTION',
  };
}

async function chooseBase(): Promise<BaseImage> {
  const wanted = values.base ?? (process.env.NEBULA_BASE_IMAGE || undefined);
  if (wanted !== undefined && wanted !== LOCAL_BASE) {
    let id = await imageId(wanted);
    if (id === null) {
      log(`pulling ${wanted}`);
      await exec('docker', ['pull', wanted], { timeoutMs: 600_000 });
      id = await imageId(wanted);
    }
    if (id === null) throw new Error(`${wanted}: pulled, but it cannot be inspected`);
    return { ref: wanted, id, built: false };
  }
  if (wanted === undefined) {
    const official = await imageId(OFFICIAL_BASE);
    if (official !== null) return { ref: OFFICIAL_BASE, id: official, built: false };
  }
  return ensureLocalBase();
}

const info = await buildInfo();
const bundles: BundleResult[] = [];
for (const service of SERVICES) {
  const b = await bundleService(service, { root: ROOT, outRoot: join(ROOT, 'dist'), version: info.version });
  if (b.built) log(`bundled dist/${service}/main.js: ${b.reasons.length > 3 ? `${b.reasons.length} inputs changed` : `changed: ${b.reasons.join(', ')}`}`);
  bundles.push(b);
}
const bundleTable = formatTable(
  ['bundle', 'main.js', 'main.js.map', 'result'],
  bundles.map((b) => [`dist/${b.service}/`, formatBytes(b.sizes['main.js'] ?? 0), formatBytes(b.sizes['main.js.map'] ?? 0), b.built ? 'built' : 'reused']),
);

let base: BaseImage | null = null;
const images: ReleaseRow[] = [];
if (!values['bundles-only']) {
  if ((await tryExec('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 30_000 })) === null) {
    throw new Error('the docker engine does not answer (bash tools/stack.sh up starts it; --bundles-only builds without it)');
  }
  base = await chooseBase();
  log(`base ${base.ref} (${base.id.replace(/^sha256:/, '').slice(0, 12)}${base.built ? ', built' : ''})`);
  for (const b of bundles) {
    const row = await buildImage({ root: ROOT, service: b.service, bundleDir: b.dir, base: base.ref, baseId: base.id, info });
    if (row.built) log(`built ${row.image}:${info.version}`);
    images.push(row);
  }
}

if (values.json) {
  console.log(JSON.stringify({ version: info.version, revision: info.revision, bundles, base, images }, null, 2));
} else {
  console.log(bundleTable);
  if (base) {
    console.log('');
    console.log(releaseTable(images));
    console.log(`\nbase: ${base.ref}${base.built ? ' (built)' : ''}`);
  }
}
