/**
 * One service bundled to plain JavaScript: services/<svc>/src/main.ts ─esbuild─▶ dist/<svc>/
 *
 *   main.js                   ESM for Node 24, every dependency inlined: runs with plain `node main.js`
 *                             from a folder with no node_modules (no type stripping, no devDependencies)
 *   main.js.map               its source map (sources included); `node --enable-source-maps` uses it
 *   lazy/                     (worker only) modules main.js loads on first call, each with its map (LAZY)
 *   package.json              {"type":"module"} and the version
 *   THIRD_PARTY_LICENSES.txt  the license of every package inlined, with its text
 *   build-inputs.json         what it was built from: rebuilt only when one of those files changed
 *   ui/                       (api only) the dashboard (services/api/ui/build.ts): index.html, assets/;
 *                             its sources are inputs too, so a change of the UI rebuilds the api's bundle
 *
 * Native addons are never inlined: ssh2's optional crypto binding (`*.node`) and `cpu-features`
 * load inside try/catch and fall back to JavaScript; `pg-native` is only loaded on request (pg.native).
 * They are replaced by a module that throws, so a bundle behaves the same wherever it lies (a
 * node_modules further up is never consulted).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import * as esbuild from 'esbuild';
import { exec } from './exec.ts';
import { type BundleManifest, hashOf, type Service, staleInputs } from './plan.ts';

export interface BundleResult {
  service: Service;
  dir: string;
  /** Bytes of each file written (main.js, main.js.map...). */
  sizes: Record<string, number>;
  built: boolean;
  /** Why it was (re)built: the inputs that changed, or '(build settings)'. */
  reasons: string[];
}

const MANIFEST = 'build-inputs.json';
/** The dashboard's build script: its settings shape the api's bundle folder (ui/). */
const UI_BUILD = 'services/api/ui/build.ts';

/** In an ESM bundle, CommonJS code still calls require() and reads __dirname: give it both. */
const BANNER = [
  "import { createRequire as __nebulaCreateRequire } from 'node:module';",
  "import { dirname as __nebulaDirname } from 'node:path';",
  "import { fileURLToPath as __nebulaFileURLToPath } from 'node:url';",
  'const require = __nebulaCreateRequire(import.meta.url);',
  'const __filename = __nebulaFileURLToPath(import.meta.url);',
  'const __dirname = __nebulaDirname(__filename);',
].join('\n');

const NOT_BUNDLED = /^(cpu-features|pg-native)$|\.node$/;

const stubNativeAddons: esbuild.Plugin = {
  name: 'stub-native-addons',
  setup(build) {
    build.onResolve({ filter: NOT_BUNDLED }, (args) => ({ path: args.path, namespace: 'not-bundled' }));
    build.onLoad({ filter: /.*/, namespace: 'not-bundled' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not part of the Nebula release build`)});`,
      loader: 'js',
    }));
  },
};

/**
 * Modules kept out of main.js, each in a file of its own (lazy/<package>-<module>.cjs, CommonJS with
 * its dependencies inlined) that main.js loads when one of them is first called: each exports one
 * function, and what they load is large and seldom needed (dockerode's BuildKit session:
 * @grpc/grpc-js, protobufjs; docker-modem's ssh:// transport: ssh2). About 0.8 MB of minified code
 * a worker never runs unless DOCKER_HOST is ssh:// or a build asks for a session; inlined, even
 * unevaluated, V8 would hold its text for as long as the process runs (a script keeps its source).
 */
const LAZY: Array<{ importer: RegExp; request: string }> = [
  { importer: /node_modules\/dockerode\/lib\/docker\.js$/, request: './session' },
  { importer: /node_modules\/docker-modem\/lib\/modem\.js$/, request: './ssh' },
];
/** The bundle's folder of lazily loaded modules. */
export const LAZY_DIR = 'lazy';
/** lazy/ file of a module, by its path relative to the repo: node_modules/dockerode/lib/session.js ─▶ dockerode-session.cjs. */
export function lazyFileOf(input: string): string {
  const pkg = packageDirOf(input);
  const name = pkg === null ? 'module' : pkg.slice(pkg.lastIndexOf('node_modules/') + 'node_modules/'.length).replace('/', '-');
  return `${name}-${basename(input).replace(/\.[cm]?js$/, '')}.cjs`;
}

const lazyModules: esbuild.Plugin = {
  name: 'lazy-modules',
  setup(build) {
    build.onResolve({ filter: /^\.\/(session|ssh)$/ }, async (args) => {
      if (args.pluginData === 'real' || !LAZY.some((l) => l.request === args.path && l.importer.test(args.importer))) return undefined;
      const real = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'real' });
      if (real.errors.length > 0) return { errors: real.errors };
      // A path relative to the repo: the bundle names no folder of the machine that built it.
      return { path: relative(build.initialOptions.absWorkingDir ?? '.', real.path), namespace: 'lazy' };
    });
    // What the stand-in requires is the lazy/ file beside main.js, at run time (bundleLazy builds it).
    build.onResolve({ filter: new RegExp(`^\\./${LAZY_DIR}/`) }, (args) => ({ path: args.path, external: true }));
    build.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => ({
      contents: `module.exports = function lazy(...args) { return require(${JSON.stringify(`./${LAZY_DIR}/${lazyFileOf(args.path)}`)}).apply(this, args); };`,
      loader: 'js',
    }));
  },
};

/**
 * Non-ASCII characters of the packages' code, as \u escapes. esbuild escapes them in strings but
 * not in regular expressions, and one such character makes V8 hold the whole bundle's source as a
 * two-byte string: twice its size, resident for as long as the process runs (a µ in a regex of
 * @nats-io/jetstream: +1.8 MB for the worker). Escaped in the input, the source map stays exact.
 */
const asciiOnly: esbuild.Plugin = {
  name: 'ascii-only',
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/].*\.[cm]?js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!/[\u0080-\uffff]/.test(text)) return undefined;
      return { contents: escapeNonAscii(text), loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

/** Every character above U+007F as a \uXXXX escape (astral ones as their surrogate pair). */
export function escapeNonAscii(text: string): string {
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Node's built-in modules, imported from ESM code, loaded with require() instead. An ESM import of a
 * built-in reads every export to build its namespace, and reading `node:http`'s lazy `WebSocket`,
 * `MessageEvent` and `CloseEvent` loads undici: ~15 MB resident that nothing uses. require() returns
 * the module object, whose lazy exports stay unread.
 */
const BUILTINS = new Set(builtinModules.flatMap((m) => (m.startsWith('node:') ? [m] : [m, `node:${m}`])));
const builtinsByRequire: esbuild.Plugin = {
  name: 'builtins-by-require',
  setup(build) {
    build.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
      if (!BUILTINS.has(args.path) || (args.kind !== 'import-statement' && args.kind !== 'dynamic-import')) return undefined;
      return { path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, namespace: 'builtin' };
    });
    build.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

const options = (root: string, service: Service, outDir: string): esbuild.BuildOptions => ({
  absWorkingDir: root,
  entryPoints: [join(root, 'services', service, 'src', 'main.ts')],
  outfile: join(outDir, 'main.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  banner: { js: BANNER },
  minify: true,
  keepNames: true,
  plugins: [builtinsByRequire, stubNativeAddons, lazyModules, asciiOnly],
});

function fileHash(root: string, path: string): string | null {
  try {
    return hashOf([readFileSync(join(root, path))]);
  } catch {
    return null;
  }
}

/** Everything besides the input files that shapes a bundle: esbuild, its settings, the lock file, package manifests. */
function buildKey(root: string, service: Service, version: string): string {
  const manifests = ['package.json', 'tsconfig.base.json', 'package-lock.json'];
  for (const group of ['libs', 'services']) {
    for (const name of readdirSync(join(root, group)).sort()) {
      if (existsSync(join(root, group, name, 'package.json'))) manifests.push(`${group}/${name}/package.json`);
    }
  }
  return hashOf([
    esbuild.version,
    service,
    version,
    readFileSync(import.meta.filename),
    ...(service === 'api' ? [readFileSync(join(root, UI_BUILD))] : []),
    JSON.stringify({ ...options(root, service, 'OUT'), plugins: undefined }),
    ...manifests.flatMap((m) => [m, fileHash(root, m) ?? 'missing']),
  ]);
}

function readManifest(dir: string): BundleManifest | null {
  try {
    return JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as BundleManifest;
  } catch {
    return null;
  }
}

/** The folder of the package an input file belongs to (the deepest node_modules/<name>), or null for our own sources. */
export function packageDirOf(input: string): string | null {
  const parts = input.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at < 0 || at + 1 >= parts.length) return null;
  const scoped = parts[at + 1]?.startsWith('@') === true;
  return parts.slice(0, at + (scoped ? 3 : 2)).join('/');
}

function thirdPartyLicenses(root: string, inputs: string[]): string {
  const dirs = [...new Set(inputs.map(packageDirOf).filter((d): d is string => d !== null))].sort();
  const seen = new Set<string>();
  const sections: string[] = [];
  for (const dir of dirs) {
    let pkg: { name?: string; version?: string; license?: string | { type?: string } };
    try {
      pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
    } catch {
      continue;
    }
    const id = `${pkg.name ?? dir}@${pkg.version ?? '?'}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const license = typeof pkg.license === 'string' ? pkg.license : (pkg.license?.type ?? 'unknown');
    const file = readdirSync(join(root, dir)).find((f) => /^(licen[cs]e|copying)(\.|-|$)/i.test(f));
    const text = file ? readFileSync(join(root, dir, file), 'utf8').trim() : `(the package has no license file; its package.json says ${license})`;
    sections.push(`==== ${pkg.name ?? dir} ${pkg.version ?? ''} (${license}) ====\n\n${text}\n`);
  }
  return [
    `Third-party packages inlined into main.js and lazy/ (for the api also into ui/, the dashboard) (${sections.length}), each with its license.`,
    '',
    ...sections,
  ].join('\n');
}

/**
 * The dashboard built into `outDir` by its own script (services/api/ui/build.ts, run as a program:
 * it belongs to the api's project), returning the files it was built from, relative to the repo.
 */
async function buildDashboard(root: string, outDir: string): Promise<string[]> {
  const out = await exec(process.execPath, [join(root, UI_BUILD), '--out-dir', outDir, '--json'], { timeoutMs: 120_000, cwd: root });
  const parsed = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { inputs?: unknown };
  if (!Array.isArray(parsed.inputs)) throw new Error(`${UI_BUILD} printed no inputs: ${out}`);
  return parsed.inputs.map(String);
}

/**
 * The lazy/ files of a bundle: each module main.js left to load later (its `lazy:` inputs), bundled
 * on its own as CommonJS with the same plugins. Returns the files they were built from.
 */
async function bundleLazy(root: string, service: Service, dir: string, mainInputs: string[]): Promise<string[]> {
  const inputs: string[] = [];
  for (const input of mainInputs.filter((p) => p.startsWith('lazy:'))) {
    const entry = input.slice('lazy:'.length);
    const result = await esbuild.build({
      ...options(root, service, dir),
      entryPoints: [join(root, entry)],
      outfile: join(dir, LAZY_DIR, lazyFileOf(entry)),
      format: 'cjs',
      banner: undefined,
      plugins: [stubNativeAddons, asciiOnly],
    });
    inputs.push(...Object.keys(result.metafile?.inputs ?? {}));
  }
  return inputs;
}

/** Bundles one service into `<outRoot>/<service>/`, or reuses what is there when none of its inputs changed. */
export async function bundleService(service: Service, opts: { root: string; outRoot: string; version: string }): Promise<BundleResult> {
  const dir = join(opts.outRoot, service);
  const key = buildKey(opts.root, service, opts.version);
  const reasons = staleInputs(readManifest(dir), key, (p) => fileHash(opts.root, p));
  const sizes = () =>
    Object.fromEntries(
      readdirSync(dir, { recursive: true, encoding: 'utf8' }).flatMap((f) => {
        const st = statSync(join(dir, f));
        return st.isFile() ? [[f, st.size]] : [];
      }),
    );
  if (reasons.length === 0 && existsSync(join(dir, 'main.js'))) return { service, dir, sizes: sizes(), built: false, reasons };

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const result = await esbuild.build(options(opts.root, service, dir));
  const lazyInputs = await bundleLazy(opts.root, service, dir, Object.keys(result.metafile?.inputs ?? {}));
  const serviceInputs = [...Object.keys(result.metafile?.inputs ?? {}), ...lazyInputs].filter((p) => !p.includes(':'));
  // The API serves ui/ beside its main.js (services/api/src/http/ui-stage.ts defaultUiDir).
  const uiInputs = service === 'api' ? await buildDashboard(opts.root, join(dir, 'ui')) : [];
  const inputs = [...new Set([...serviceInputs, ...uiInputs])].sort();
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify(
      { name: `@nebula/${service}-release`, version: opts.version, private: true, type: 'module', main: 'main.js', engines: { node: '>=24' } },
      null,
      2,
    )}\n`,
  );
  writeFileSync(join(dir, 'THIRD_PARTY_LICENSES.txt'), thirdPartyLicenses(opts.root, inputs));
  const manifest: BundleManifest = { key, inputs: Object.fromEntries(inputs.map((p) => [p, fileHash(opts.root, p) ?? 'missing'])) };
  // Written last: a build cut short leaves no manifest, so the next run builds again.
  writeFileSync(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
  return { service, dir, sizes: sizes(), built: true, reasons };
}
