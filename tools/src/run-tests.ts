/**
 * Runs every test file (`*.test.ts` under libs/, services/ and tools/) in its own Node process and
 * prints one closing line that CI reads: `N passed, N failed`.
 *
 *   node tools/src/run-tests.ts [filter...]     only files whose path contains one of the filters
 *
 * Each file is a uvu suite run directly; its "Total:/Passed:" summary is parsed. A file that crashes,
 * times out or exits non-zero without a failing test counts as one failure. Output of every file
 * goes to .stack/test-logs/; failing files' output is also printed.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 10 * 60_000);
const CONCURRENCY = Math.max(1, Number(process.env.TEST_CONCURRENCY ?? 1));
const LOG_DIR = join(ROOT, '.stack', 'test-logs');

function findTests(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) findTests(full, out);
    else if (entry.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

export interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  ms: number;
  output: string;
}

/** An ANSI colour sequence (ESC [ ... m). */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

export function parseUvuSummary(output: string, exitCode: number | null): { passed: number; failed: number; skipped: number } {
  const text = output.replace(ANSI, '');
  const totals = [...text.matchAll(/Total:\s+(\d+)\s+Passed:\s+(\d+)\s+Skipped:\s+(\d+)/g)];
  if (totals.length === 0) return { passed: 0, failed: 1, skipped: 0 };
  let total = 0;
  let passed = 0;
  let skipped = 0;
  for (const m of totals) {
    total += Number(m[1]);
    passed += Number(m[2]);
    skipped += Number(m[3]);
  }
  let failed = total - passed;
  if (exitCode !== 0 && failed === 0) failed = 1;
  return { passed, failed, skipped };
}

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], {
      cwd: ROOT,
      env: { ...process.env, NODE_DISABLE_COLORS: '1', NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[run-tests] timed out after ${TIMEOUT_MS} ms\n`;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ file: relative(ROOT, file), ...parseUvuSummary(output, code), ms: Date.now() - started, output });
    });
  });
}

/** Repo-wide checks that run with the full suite, each counted as one test. */
const CHECKS: Array<{ name: string; args: string[] }> = [
  { name: 'typecheck (tsc, strict, whole repo)', args: [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')] },
  { name: 'module boundaries', args: [join(ROOT, 'tools/src/check-boundaries.ts')] },
  // Formatting and lint rules (biome.json): `npm run format` fixes what `biome check` finds to format.
  { name: 'format and lint (biome check)', args: [join(ROOT, 'node_modules/@biomejs/biome/bin/biome'), 'check', '--error-on-warnings', ROOT] },
];

function runCheck(check: { name: string; args: string[] }): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, check.args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => {
      const ok = code === 0;
      resolve({ file: check.name, passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0, ms: Date.now() - started, output });
    });
  });
}

function report(r: FileResult) {
  const mark = r.failed > 0 ? 'FAIL' : 'ok  ';
  console.log(`${mark} ${r.file}  ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}  (${(r.ms / 1000).toFixed(1)} s)`);
  if (r.failed > 0) console.log(r.output.replace(ANSI, '').replace(/^/gm, '    | '));
}

async function main() {
  const filters = process.argv.slice(2);
  const files = ['libs', 'services', 'tools']
    .flatMap((d) => findTests(join(ROOT, d)))
    .filter((f) => filters.length === 0 || filters.some((x) => relative(ROOT, f).includes(x)))
    .sort();
  mkdirSync(LOG_DIR, { recursive: true });
  const results: FileResult[] = [];
  if (filters.length === 0) {
    for (const check of CHECKS) {
      const r = await runCheck(check);
      results.push(r);
      report(r);
    }
  }
  // One iterator shared by the lanes: each takes the next file.
  const pending = files.values();
  async function lane() {
    for (const file of pending) {
      const r = await runFile(file);
      results.push(r);
      writeFileSync(join(LOG_DIR, `${r.file.replaceAll('/', '__')}.log`), r.output);
      report(r);
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, lane));
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const skipped = results.reduce((n, r) => n + r.skipped, 0);
  if (files.length === 0) console.log('no test files matched');
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
}

if (import.meta.main) await main();
