/**
 * The end-to-end results table. Every e2e test file records its cases (result, time to converge,
 * what was checked) in .stack/e2e/results/<file>.json when it ends, then renders the table of every
 * file's latest record into docs/e2e-results.md. Running one file alone updates its own rows.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './processes.ts';

export type CaseKind = 'scenario' | 'fault' | 'bad input';

export interface CaseRecord {
  order: number;
  name: string;
  kind: CaseKind;
  checks: string;
  result: 'passed' | 'failed';
  /** Time from each change to every host converged, in order. */
  steps: Array<{ what: string; ms: number }>;
  error?: string;
  ms: number;
}

export interface FileRecord {
  file: string;
  at: string;
  setupMs: number;
  totalMs: number;
  cases: CaseRecord[];
}

const RESULTS_DIR = join(REPO_ROOT, '.stack', 'e2e', 'results');
export const RESULTS_DOC = join(REPO_ROOT, 'docs', 'e2e-results.md');

/** Collects the time to converge of each change a case makes. */
export class Recorder {
  readonly steps: Array<{ what: string; ms: number }> = [];
  converged(what: string, ms: number): number {
    this.steps.push({ what, ms });
    return ms;
  }
}

type SuiteLike = (name: string, fn: () => Promise<void>) => void;

export class Report {
  private readonly file: string;
  private readonly cases: CaseRecord[] = [];
  private readonly started = Date.now();
  setupMs = 0;

  constructor(file: string) {
    this.file = file;
  }

  /** Registers a uvu test that records its outcome and convergence times. */
  case(test: SuiteLike, kind: CaseKind, name: string, checks: string, fn: (r: Recorder) => Promise<void>): void {
    const order = this.cases.length + 1;
    const placeholder: CaseRecord = { order, name, kind, checks, result: 'failed', steps: [], error: 'did not run', ms: 0 };
    this.cases.push(placeholder);
    test(name, async () => {
      const r = new Recorder();
      const t0 = Date.now();
      try {
        await fn(r);
        Object.assign(placeholder, { result: 'passed', steps: r.steps, ms: Date.now() - t0 });
        delete placeholder.error;
      } catch (err) {
        Object.assign(placeholder, {
          result: 'failed',
          steps: r.steps,
          ms: Date.now() - t0,
          error: String(err instanceof Error ? err.message : err).slice(0, 300),
        });
        throw err;
      }
    });
  }

  /** Writes this file's record and renders the table. */
  write(): void {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const rec: FileRecord = { file: this.file, at: new Date().toISOString(), setupMs: this.setupMs, totalMs: Date.now() - this.started, cases: this.cases };
    writeFileSync(join(RESULTS_DIR, `${this.file.replaceAll('/', '__')}.json`), JSON.stringify(rec, null, 2));
    renderResults();
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function renderResults(): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const files = readdirSync(RESULTS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as FileRecord)
    .sort((a, b) => a.file.localeCompare(b.file));
  const all = files.flatMap((f) => f.cases);
  const passed = all.filter((c) => c.result === 'passed').length;
  const lines: string[] = [
    '# End-to-end results',
    '',
    'Written by the end-to-end tests (`npm test -- tools/test/e2e`; `tools/src/e2e/report.ts`) from their last run;',
    'do not edit by hand. Each file starts the real system once: PostgreSQL and NATS (testcontainers), two API',
    'replicas, a notifier, and three hosts, each with its own network namespace, Docker engine and worker. Every',
    'check looks at the hosts from outside (their engines, and HTTP to the published ports). `e2e-6-compose` runs the',
    'release images instead: the control plane from `deploy/compose.yaml`, the worker image on two such hosts.',
    '',
    '"Time to converge": from the request that makes a change until every host runs what it should, checked by polling',
    '(every 200 ms) the engines and the published ports; several changes in one case are listed in order.',
    '',
    `Last run: ${
      files
        .map((f) => f.at)
        .sort()
        .at(-1) ?? 'never'
    } on ${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB;`,
    `${passed} of ${all.length} passed; harness start ${files.map((f) => `${f.file.replace(/^.*\//, '')} ${seconds(f.setupMs)}`).join(', ')};`,
    `total ${seconds(files.reduce((n, f) => n + f.totalMs, 0))}.`,
    '',
    '| scenario or fault | kind | result | time to converge | what is checked |',
    '|---|---|---|---|---|',
  ];
  for (const f of files) {
    for (const c of f.cases) {
      const times = c.steps.length === 0 ? '-' : c.steps.map((s) => `${s.what} ${seconds(s.ms)}`).join('; ');
      const result = c.result === 'passed' ? 'passed' : `**failed**: ${(c.error ?? '').replaceAll('|', '\\|').replaceAll('\n', ' ')}`;
      lines.push(`| ${c.name} | ${c.kind} | ${result} | ${times} | ${c.checks.replaceAll('|', '\\|')} |`);
    }
  }
  const text = `${lines.join('\n')}\n`;
  mkdirSync(join(REPO_ROOT, 'docs'), { recursive: true });
  writeFileSync(RESULTS_DOC, text);
  return text;
}
