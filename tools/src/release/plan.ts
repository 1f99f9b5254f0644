/**
 * The decisions of the release build, as pure functions (run.ts does the work):
 * which services, which image names and tags, which hash says "unchanged", which `docker build`
 * command line, and the table `npm run release` prints.
 */
import { createHash } from 'node:crypto';
import { formatTable as formatTableOf } from '../text-table.ts';

export const SERVICES = ['api', 'notifier', 'worker', 'cli'] as const;
export type Service = (typeof SERVICES)[number];

/** The base a user with internet builds on (the Dockerfiles' default). */
export const OFFICIAL_BASE = 'node:24-slim';
/** The base made from this machine's files (base-image.ts) when the official one is not here. */
export const LOCAL_BASE = 'nebula/node-base:24';
/** The label holding the hash of an image's inputs (the same label tools/images/build.sh uses). */
export const HASH_LABEL = 'nebula.build-hash';
/** The files of a bundle folder that go into its image (the Dockerfiles copy exactly these). */
export const BUNDLE_FILES = ['main.js', 'main.js.map', 'package.json', 'THIRD_PARTY_LICENSES.txt'] as const;

/**
 * How the worker's image runs Node (deploy/docker/worker.Dockerfile and deploy/nebula-worker.service say
 * the same; release.test.ts and release-plan.test.ts check they agree, and the footprint benchmark
 * runs the bundle so). An idle agent on every host, so memory before speed:
 *   --max-semi-space-size=1      young generation of 1 MB semi-spaces instead of up to 16
 *   --optimize-for-size          V8's size-over-speed heuristics
 *   --max-opt=1                  no optimising compiler above Sparkplug (its code and zones; the worker
 *                                waits on I/O: rollouts took as long and as little CPU)
 *   --heap-growing-percent=10    the old generation grows by 10 % between full GCs, not by V8's factor
 *   --flush-baseline-code, --bytecode-old-age=2
 *                                code of a function not run for two full GCs is dropped (compiled
 *                                again if it runs again): what only the start ran (config, join,
 *                                adoption) does not stay resident; idle 69.0 -> 66.4 MB, rollouts as fast
 *   MALLOC_ARENA_MAX=1, MALLOC_TRIM_THRESHOLD_=65536, MALLOC_TOP_PAD_=0
 *                                one malloc arena, trimmed back: without them what compiling and
 *                                converging allocated stayed resident, 8-10 MB in one run of two
 *   MALLOC_MMAP_THRESHOLD_=16384 blocks of 16 KB and more in mappings of their own, given back when
 *                                freed: V8 parses and compiles in such blocks (its peak at start
 *                                was ~15 MB), and in the one arena what was freed under a block still
 *                                in use stayed resident: idle 79-80 MB without it, 69 with it
 * Measured with the footprint benchmark (tools/bench/worker-footprint.ts): idle ~110 MB resident
 * with Node's defaults, ~66 with these.
 */
export const WORKER_RUNTIME = {
  nodeArgs: ['--max-semi-space-size=1', '--optimize-for-size', '--max-opt=1', '--heap-growing-percent=10', '--flush-baseline-code', '--bytecode-old-age=2'],
  env: { MALLOC_ARENA_MAX: '1', MALLOC_TRIM_THRESHOLD_: '65536', MALLOC_TOP_PAD_: '0', MALLOC_MMAP_THRESHOLD_: '16384' },
} as const;

export const imageName = (service: Service): string => `nebula/${service}`;
export const imageTags = (service: Service, version: string): string[] => [`${imageName(service)}:${version}`, `${imageName(service)}:latest`];
export const dockerfileFor = (service: Service): string => `deploy/docker/${service}.Dockerfile`;

/**
 * A short hash of several parts. Each part is length-prefixed, so moving bytes from one part to the
 * next changes the hash (["ab", "c"] and ["a", "bc"] differ).
 */
export function hashOf(parts: ReadonlyArray<string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) {
    const bytes = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    h.update(`${bytes.length}:`);
    h.update(bytes);
  }
  return h.digest('hex').slice(0, 16);
}

/** What a bundle was built from: a key (build settings, lock file...) and the hash of every input file. */
export interface BundleManifest {
  key: string;
  inputs: Record<string, string>;
}

/**
 * The inputs of a recorded build that differ now (changed, or gone: `null`), or `['(build settings)']`
 * when the key differs. Empty: the bundle is up to date.
 */
export function staleInputs(recorded: BundleManifest | null, key: string, current: (path: string) => string | null): string[] {
  if (recorded === null || recorded.key !== key) return ['(build settings)'];
  return Object.entries(recorded.inputs)
    .filter(([path, hash]) => current(path) !== hash)
    .map(([path]) => path);
}

/** The values of the OCI labels that vary per build (the Dockerfiles turn them into labels). */
export interface BuildInfo {
  version: string;
  revision: string;
  created: string;
  source: string;
  licenses: string;
}

/** The argv of `docker build` for one service image. */
export function dockerBuildArgs(opts: { service: Service; base: string; hash: string; info: BuildInfo; context: string; dockerfile: string }): string[] {
  const args = ['build', '--pull=false', '-f', opts.dockerfile, '--build-arg', `BASE=${opts.base}`];
  const buildArgs: Record<string, string> = {
    VERSION: opts.info.version,
    REVISION: opts.info.revision,
    CREATED: opts.info.created,
    SOURCE: opts.info.source,
    LICENSES: opts.info.licenses,
  };
  for (const [k, v] of Object.entries(buildArgs)) args.push('--build-arg', `${k}=${v}`);
  args.push('--label', `${HASH_LABEL}=${opts.hash}`);
  for (const tag of imageTags(opts.service, opts.info.version)) args.push('-t', tag);
  args.push(opts.context);
  return args;
}

export interface ReleaseRow {
  image: string;
  tags: string[];
  id: string;
  sizeBytes: number;
  built: boolean;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export { formatTable } from '../text-table.ts';

export function releaseTable(rows: ReleaseRow[]): string {
  return formatTableOf(
    ['image', 'tags', 'id', 'size', 'result'],
    rows.map((r) => [r.image, r.tags.join(', '), r.id.replace(/^sha256:/, '').slice(0, 12), formatBytes(r.sizeBytes), r.built ? 'built' : 'reused']),
  );
}
