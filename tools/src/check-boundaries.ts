/**
 * Module boundaries, checked from the source: exits 1 listing every violation.
 *
 * - Projects are the folders with a project.json (libs/*, services/*, tools); their `tags` say
 *   `type:lib|service|tool` and `scope:*`.
 * - A lib may import only libs; a service may import libs, never another service.
 * - `@nebula/<lib>` is imported by its name only (no deep imports), and relative imports stay inside
 *   their project.
 * - Every `@nebula/*` import is declared in the project's package.json.
 * - Scopes: `scope:shared` libs serve everyone, others only their own scope and SCOPE_USERS.
 * - Outside packages live where they belong (PACKAGE_RULES).
 * - The one exception to "libs never import services": TYPE_ONLY_EXCEPTIONS, type-only imports
 *   (`import type ...` / `export type ... from`, erased before run time) of a named service from a
 *   named lib, so a typed client can follow a service's API without loading any of its code.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface PackageRule {
  pkg: string;
  /** Path prefixes (relative to the repo root, with "/") where the package may be imported. */
  allowedIn: string[];
  why: string;
}

export const PACKAGE_RULES: PackageRule[] = [
  {
    pkg: 'dockerode',
    allowedIn: ['services/worker/src/runtime/', 'services/worker/test/', 'tools/test/'],
    why: "dockerode only in the worker's runtime adapter",
  },
  {
    pkg: 'kysely',
    allowedIn: ['libs/db/', 'services/api/src/db/', 'services/notifier/src/db/'],
    why: 'kysely only in the data layer (libs/db, services/{api,notifier}/src/db)',
  },
  {
    pkg: 'pg',
    allowedIn: ['libs/db/', 'services/api/src/db/', 'services/notifier/src/db/'],
    why: 'pg only in the data layer (libs/db, services/{api,notifier}/src/db)',
  },
  { pkg: '@trpc/server', allowedIn: ['services/api/'], why: '@trpc/server only in the API' },
];

export interface TypeOnlyException {
  /** Path prefix of the importing files (relative to the repo root, with "/"). */
  from: string;
  pkg: string;
  why: string;
}

export const TYPE_ONLY_EXCEPTIONS: TypeOnlyException[] = [
  { from: 'libs/client/', pkg: '@nebula/api', why: "the typed client takes the API router's type (AppRouter)" },
];

/**
 * Tests that run several services together in one process (the API with a notifier and workers
 * doing a real rollout; the CLI against a running API). Only files under these `test/` folders, only
 * these packages, and still only when declared (as devDependencies): the services' own code stays
 * apart.
 */
export interface TestImportException {
  from: string;
  pkgs: string[];
  why: string;
}

export const TEST_IMPORT_EXCEPTIONS: TestImportException[] = [
  { from: 'services/api/test/', pkgs: ['@nebula/notifier', '@nebula/worker'], why: 'rollouts.watch followed through a real rollout' },
  { from: 'services/cli/test/', pkgs: ['@nebula/api', '@nebula/db', '@nebula/notifier', '@nebula/worker'], why: 'the CLI run against a running API and fleet' },
];

/** Scopes other than `shared` that may be used from other scopes. */
export const SCOPE_USERS: Record<string, string[]> = {
  data: ['api', 'notifier', 'tools'],
  // The benchmarks (tools/bench) run the real worker code with an in-memory runtime, many per process.
  worker: ['tools'],
  // Simulated hosts (libs/local-fleet): `npm start`'s local fleet (tools) and the tests' (test-kit), never a service.
  fleet: ['tools', 'shared'],
};

interface Project {
  name: string;
  root: string;
  tags: string[];
  packageName: string | null;
  declared: Set<string>;
}

export interface Violation {
  file: string;
  line: number;
  message: string;
}

function listFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules' || e.startsWith('.')) continue;
    const full = join(dir, e);
    if (statSync(full).isDirectory()) listFiles(full, out);
    else if (/\.(ts|mts|js|mjs)$/.test(e)) out.push(full);
  }
  return out;
}

function loadProjects(root: string): Project[] {
  const dirs = ['libs', 'services'].filter((d) => existsSync(join(root, d))).flatMap((d) => readdirSync(join(root, d)).map((x) => join(d, x)));
  dirs.push('tools');
  const projects: Project[] = [];
  for (const d of dirs) {
    const pj = join(root, d, 'project.json');
    if (!existsSync(pj)) continue;
    const project = JSON.parse(readFileSync(pj, 'utf8')) as { name: string; tags?: string[] };
    const pkgPath = join(root, d, 'package.json');
    const pkg = existsSync(pkgPath)
      ? (JSON.parse(readFileSync(pkgPath, 'utf8')) as { name?: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> })
      : {};
    projects.push({
      name: project.name,
      root: d.split(sep).join('/'),
      tags: project.tags ?? [],
      packageName: pkg.name ?? null,
      declared: new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})]),
    });
  }
  return projects;
}

// Static imports and re-exports start a line; dynamic imports may stand anywhere.
const IMPORT_RE = /(?:^[ \t]*import\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?|^[ \t]*export\s+[^'";]*?\sfrom\s+|\bimport\s*\(\s*)['"]([^'"]+)['"]/gm;
// Whole-statement type imports only: `import { type X }` keeps a run-time import under verbatimModuleSyntax.
const TYPE_ONLY_RE = /^[ \t]*(?:import|export)\s+type\s/;

export function importsOf(source: string): Array<{ spec: string; line: number; typeOnly: boolean }> {
  const out: Array<{ spec: string; line: number; typeOnly: boolean }> = [];
  for (const m of source.matchAll(IMPORT_RE)) {
    const [statement, spec] = m;
    if (spec === undefined) throw new Error(`IMPORT_RE matched without a module specifier: ${statement}`);
    out.push({ spec, line: source.slice(0, m.index).split('\n').length, typeOnly: TYPE_ONLY_RE.test(statement) });
  }
  return out;
}

function tag(p: Project, prefix: string): string | undefined {
  return p.tags.find((t) => t.startsWith(prefix))?.slice(prefix.length);
}

function packageOf(spec: string): string {
  // @scope/name or name
  return spec
    .split('/')
    .slice(0, spec.startsWith('@') ? 2 : 1)
    .join('/');
}

export function checkBoundaries(root: string): Violation[] {
  const projects = loadProjects(root);
  const byPackage = new Map<string, Project>();
  for (const p of projects) if (p.packageName) byPackage.set(p.packageName, p);
  const violations: Violation[] = [];
  for (const p of projects) {
    if (!tag(p, 'type:') || !tag(p, 'scope:')) {
      violations.push({ file: `${p.root}/project.json`, line: 1, message: 'project needs a type:* and a scope:* tag' });
    }
    for (const file of listFiles(join(root, p.root))) {
      const rel = relative(root, file).split(sep).join('/');
      const source = readFileSync(file, 'utf8');
      for (const { spec, line, typeOnly } of importsOf(source)) {
        const at = (message: string) => violations.push({ file: rel, line, message });
        if (spec.startsWith('.')) {
          const target = relative(root, resolve(dirname(file), spec))
            .split(sep)
            .join('/');
          if (!target.startsWith(`${p.root}/`)) at(`relative import "${spec}" leaves project ${p.name}: import the package by name`);
          continue;
        }
        if (spec.startsWith('node:')) continue;
        const pkg = packageOf(spec);
        const target = byPackage.get(pkg);
        if (target) {
          if (spec !== pkg) at(`deep import "${spec}": import "${pkg}" (its src/index.ts) instead`);
          if (target === p) at(`project imports itself by package name "${pkg}"`);
          if (!p.declared.has(pkg)) at(`"${pkg}" is not declared in ${p.root}/package.json`);
          if (typeOnly && TYPE_ONLY_EXCEPTIONS.some((e) => e.pkg === pkg && rel.startsWith(e.from))) continue;
          if (TEST_IMPORT_EXCEPTIONS.some((e) => e.pkgs.includes(pkg) && rel.startsWith(e.from))) continue;
          const from = tag(p, 'type:');
          const to = tag(target, 'type:');
          if (from === 'lib' && to !== 'lib') at(`lib ${p.name} must not depend on ${to} ${target.name}`);
          if (from === 'service' && to === 'service') at(`service ${p.name} must not depend on service ${target.name}`);
          const targetScope = tag(target, 'scope:');
          const fromScope = tag(p, 'scope:') ?? '';
          if (targetScope && targetScope !== 'shared' && targetScope !== fromScope && !SCOPE_USERS[targetScope]?.includes(fromScope)) {
            at(`${p.name} (scope:${tag(p, 'scope:')}) must not depend on ${target.name} (scope:${targetScope})`);
          }
          continue;
        }
        for (const rule of PACKAGE_RULES) {
          if (pkg === rule.pkg && !rule.allowedIn.some((prefix) => rel.startsWith(prefix))) at(`"${spec}": ${rule.why}`);
        }
      }
    }
  }
  return violations;
}

if (import.meta.main) {
  const root = process.argv[2] ?? join(import.meta.dirname, '..', '..');
  const violations = checkBoundaries(root);
  for (const v of violations) console.error(`${v.file}:${v.line}: ${v.message}`);
  if (violations.length > 0) {
    console.error(`${violations.length} module boundary violation(s)`);
    process.exit(1);
  }
  console.log('module boundaries: ok');
}
