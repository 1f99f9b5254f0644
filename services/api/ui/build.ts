/**
 * Builds the dashboard: src/main.tsx bundled by esbuild (React, the typed client, the zod schemas
 * of @nebula/contracts) into dist/assets/main-<hash>.js and .css, and dist/index.html naming them.
 * The API serves dist/ at /ui (services/api/src/http/ui-stage.ts). Everything is in the bundle:
 * no CDN, no font or script from elsewhere, no inline script (the CSP allows only self).
 *
 *   node services/api/ui/build.ts            build, print the sizes (raw and gzip)
 *   node services/api/ui/build.ts --if-stale build only when a source is newer than dist/index.html
 *
 *   node services/api/ui/build.ts --out-dir D --json   build into D, print {files, inputs} as JSON
 *
 * The release build (tools/src/release/bundle.ts) runs the last form into dist/api/ui and keeps the
 * inputs' hashes, so a release rebuilds the dashboard only when one of them changed.
 *
 * @nebula/contracts imports node:crypto for hashes the dashboard never computes: that import is
 * replaced by a stub that throws if it were ever called.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';

const UI = import.meta.dirname;
const DIST = join(UI, 'dist');
const SOURCES = [join(UI, 'src'), join(UI, 'index.html'), join(UI, '../../../libs/client/src'), join(UI, '../../../libs/contracts/src')];

function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

export function isStale(): boolean {
  const index = join(DIST, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  return SOURCES.some((s) => existsSync(s) && newest(s) > built);
}

const nodeStub: Plugin = {
  name: 'node-stub',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'node-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => ({
      contents: `export function createHash() { throw new Error(${JSON.stringify(`${args.path} is not available in the browser`)}); }`,
      loader: 'js',
    }));
  },
};

export interface BuildResult {
  files: Array<{ name: string; bytes: number; gzipBytes: number }>;
  /** The files it was built from, relative to the repository (the release build hashes them to know when to build again). */
  inputs: string[];
}

const ROOT = join(UI, '..', '..', '..');

/** Builds into `outDir` (default services/api/ui/dist; the release build: dist/api/ui). */
export async function buildUi(opts: { outDir?: string } = {}): Promise<BuildResult> {
  const dist = opts.outDir ?? DIST;
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(join(dist, 'assets'), { recursive: true });
  const out = await build({
    absWorkingDir: ROOT,
    entryPoints: { main: join(UI, 'src/main.tsx') },
    bundle: true,
    minify: true,
    sourcemap: 'linked',
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari17'],
    platform: 'browser',
    jsx: 'automatic',
    outdir: join(dist, 'assets'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    metafile: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    plugins: [nodeStub],
    logLevel: 'warning',
  });
  const outputs = Object.keys(out.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js) throw new Error('the build wrote no JavaScript');
  const html = readFileSync(join(UI, 'index.html'), 'utf8')
    .replace('<!-- styles -->', css ? `<link rel="stylesheet" href="/ui/assets/${css}" />` : '')
    .replace('<!-- scripts -->', `<script type="module" src="/ui/assets/${js}"></script>`);
  writeFileSync(join(dist, 'index.html'), html);
  const files = [...outputs.filter((f) => !f.endsWith('.map')).map((f) => join('assets', f)), 'index.html'].map((name) => {
    const body = readFileSync(join(dist, name));
    return { name, bytes: body.length, gzipBytes: gzipSync(body).length };
  });
  const inputs = [...Object.keys(out.metafile.inputs).filter((p) => !p.includes(':')), relative(ROOT, join(UI, 'index.html'))].sort();
  return { files, inputs };
}

export function describeSizes(r: BuildResult): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const total = r.files.reduce((a, f) => ({ bytes: a.bytes + f.bytes, gzip: a.gzip + f.gzipBytes }), { bytes: 0, gzip: 0 });
  return [...r.files.map((f) => `  ${f.name}: ${kb(f.bytes)} (${kb(f.gzipBytes)} gzip)`), `  total: ${kb(total.bytes)} (${kb(total.gzip)} gzip)`].join('\n');
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out-dir');
  const outDir = at >= 0 ? args[at + 1] : undefined;
  if (at >= 0 && !outDir) throw new Error('--out-dir needs a folder');
  if (args.includes('--if-stale') && outDir === undefined && !isStale()) {
    console.error('[ui] dashboard up to date (services/api/ui/dist)');
  } else {
    const r = await buildUi(outDir === undefined ? {} : { outDir });
    console.error(`[ui] dashboard built into ${outDir ?? 'services/api/ui/dist'}:\n${describeSizes(r)}`);
    if (args.includes('--json')) process.stdout.write(`${JSON.stringify(r)}\n`);
  }
}
