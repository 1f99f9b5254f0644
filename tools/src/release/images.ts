/**
 * One service image from its Dockerfile (deploy/docker/<svc>.Dockerfile) and its bundle folder
 * (the build context), tagged `nebula/<svc>:<version>` and `:latest`. Reused when the hash of its
 * inputs (the Dockerfile, the bundle's files, the base image's id, the labels' fixed values) is the
 * one on the image already (label nebula.build-hash); `revision` and `created` describe the build
 * that made it, so an image reused for a later commit with the same bundle keeps those of its build.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { imageId, imageLabel } from './base-image.ts';
import { LAZY_DIR } from './bundle.ts';
import { exec } from './exec.ts';
import {
  BUNDLE_FILES,
  type BuildInfo,
  dockerBuildArgs,
  dockerfileFor,
  HASH_LABEL,
  hashOf,
  imageName,
  imageTags,
  type ReleaseRow,
  type Service,
} from './plan.ts';

/**
 * The files of a bundle's folders, sorted: ui/ (the api's dashboard) and lazy/ (the worker's modules
 * loaded on first call); none for a bundle without them.
 */
export function folderFiles(bundleDir: string): string[] {
  return ['ui', LAZY_DIR].flatMap((folder) => {
    const at = join(bundleDir, folder);
    if (!existsSync(at)) return [];
    return readdirSync(at, { recursive: true, encoding: 'utf8' })
      .filter((f) => statSync(join(at, f)).isFile())
      .map((f) => join(folder, f))
      .sort();
  });
}

export function imageHash(opts: { root: string; service: Service; bundleDir: string; baseId: string; info: BuildInfo }): string {
  return hashOf([
    readFileSync(join(opts.root, dockerfileFor(opts.service))),
    ...BUNDLE_FILES.flatMap((f) => [f, readFileSync(join(opts.bundleDir, f))]),
    // The api's image copies ui/ too (the dashboard), the worker's lazy/: a change of them alone makes a new image.
    ...folderFiles(opts.bundleDir).flatMap((f) => [f, readFileSync(join(opts.bundleDir, f))]),
    opts.baseId,
    opts.info.version,
    opts.info.source,
    opts.info.licenses,
  ]);
}

async function imageSize(ref: string): Promise<number> {
  return Number((await exec('docker', ['image', 'inspect', '-f', '{{.Size}}', ref], { timeoutMs: 30_000 })).trim());
}

export async function buildImage(opts: {
  root: string;
  service: Service;
  bundleDir: string;
  base: string;
  baseId: string;
  info: BuildInfo;
}): Promise<ReleaseRow> {
  const [main, ...others] = imageTags(opts.service, opts.info.version);
  if (main === undefined) throw new Error('no tag');
  const hash = imageHash(opts);
  let built = false;
  if ((await imageLabel(main, HASH_LABEL)) === hash) {
    // The same image: make sure every tag names it (`latest` may have moved to another build).
    for (const tag of others) await exec('docker', ['tag', main, tag], { timeoutMs: 30_000 });
  } else {
    const args = dockerBuildArgs({ ...opts, hash, context: opts.bundleDir, dockerfile: join(opts.root, dockerfileFor(opts.service)) });
    // The classic builder (Docker 20.10's default) and BuildKit both take this command line.
    await exec('docker', args, { timeoutMs: 600_000, env: { ...process.env, DOCKER_CLI_HINTS: 'false' } });
    built = true;
  }
  const id = await imageId(main);
  if (!id) throw new Error(`${main}: built, but it cannot be inspected`);
  return { image: imageName(opts.service), tags: [opts.info.version, 'latest'], id, sizeBytes: await imageSize(main), built };
}
