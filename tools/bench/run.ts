/**
 * `npm run bench`: runs every benchmark part and writes bench/RESULTS.md, with CSV and SVG beside it.
 *
 *   npm run bench                          every part, full sizes: bench/RESULTS.md
 *   npm run bench -- --quick               smaller sizes, fewer runs: bench/quick/RESULTS.md
 *   npm run bench -- --only fanout         one part (fanout | real-host | api | worker | notifier | waves | ui | ceiling): bench/quick/
 *   npm run bench -- --only ceiling --update   one part at full size, its section (and CSV) replaced in
 *                                          bench/RESULTS.md, the other sections kept as they are
 *   npm run bench -- --hosts 1,10,2000     fan-out (and notifier, ui) sizes;  --runs 7: runs per figure;  --out DIR
 *   npm run bench -- --help                this text
 *
 * The bus runs secured in every part (services.ts): the services with their own creds, hosts with
 * identities of their own, every result and heartbeat signed by its host and checked by the notifier.
 *
 * Figures are printed, never asserted. Everything started is stopped at the end (also on Ctrl-C):
 * processes, nats-servers, databases, containers labelled io.nebula.bench=true, the Swarm service.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runApiLoad } from './api-load.ts';
import { runCeiling } from './ceiling.ts';
import { runFanout } from './fanout.ts';
import { runNotifierLoad } from './notifier-load.ts';
import { cpuTotals, loadAverage } from './proc-stats.ts';
import { runRealHost } from './real-host.ts';
import { type PartResult, replaceSection, writeText } from './report.ts';
import { ROOT } from './services.ts';
import { runUiGrid } from './ui-grid.ts';
import { runWaves } from './waves.ts';
import { runWorkerFootprint } from './worker-footprint.ts';

const PARTS = ['fanout', 'real-host', 'api', 'worker', 'notifier', 'waves', 'ui', 'ceiling'] as const;
type Part = (typeof PARTS)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string', multiple: true },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    hosts: { type: 'string' },
    out: { type: 'string' },
    update: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  // The usage is the head comment of this file.
  const head = /^\/\*\*\n([\s\S]*?)\*\//.exec(readFileSync(import.meta.filename, 'utf8'))?.[1] ?? '';
  console.log(head.replace(/^ \* ?/gm, '').trimEnd());
  process.exit(0);
}

const only = (values.only ?? []).flatMap((s) => s.split(','));
for (const p of only) if (!PARTS.includes(p as Part)) throw new Error(`--only ${p}: expected one of ${PARTS.join(', ')}`);
const parts: Part[] = only.length > 0 ? (only as Part[]) : [...PARTS];
const quick = values.quick;
const full = !quick && only.length === 0;
const runs = values.runs ? Number(values.runs) : quick ? 3 : 5;
const outDir = values.out ?? join(ROOT, 'bench', full || (values.update && !quick) ? '' : 'quick');
const hostSizes = values.hosts ? values.hosts.split(',').map(Number) : quick ? [1, 10, 100] : [1, 10, 100, 1000, 5000];

const log = (s: string) => console.log(`[bench] ${s}`);

function version(cmd: string, args: string[], pick: (s: string) => string = (s) => s.trim()): string {
  try {
    return pick(execFileSync(cmd, args, { encoding: 'utf8' }));
  } catch {
    return 'unknown';
  }
}

function machine(): string[] {
  return [
    `- CPU: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'})`,
    `- memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- kernel: Linux ${release()}`,
    `- Node.js: ${process.version}`,
    `- Docker engine: ${version('docker', ['version', '--format', '{{.Server.Version}}'])}`,
    `- nats-server: ${version('nats-server', ['--version'], (s) => s.trim().replace(/^nats-server:\s*/, ''))}`,
    `- PostgreSQL: ${version('psql', ['--version'], (s) => s.trim().replace(/^psql \(PostgreSQL\)\s*/, ''))}`,
  ];
}

/** Samples the machine's load while the benchmark runs, to say how quiet it was. */
function loadMonitor() {
  const loads: number[] = [];
  const c0 = cpuTotals();
  const t = setInterval(() => loads.push(loadAverage()[0]), 5000);
  t.unref();
  return {
    stop() {
      clearInterval(t);
      const c1 = cpuTotals();
      const busy = (c1.busy - c0.busy) / Math.max(1, c1.total - c0.total);
      const sorted = [...loads].sort((a, b) => a - b);
      return { busy, min: sorted[0] ?? Number.NaN, median: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN };
    },
  };
}

const startedAt = new Date();
const monitor = loadMonitor();
const loadBefore = loadAverage();
const sections: Array<{ title: string; result: PartResult | null; error?: string; seconds: number }> = [];
const titles: Record<Part, string> = {
  fanout: '1. Fan-out to N simulated hosts',
  'real-host': '2. A real host against Docker Swarm and the docker floor',
  api: '3. API under load',
  worker: '4. Worker footprint',
  notifier: '5. Notifier: signed results of N simulated hosts',
  waves: '6. Rollouts in waves: 1,000 simulated hosts, waves [1, 10, 100]',
  ui: "7. Dashboard: the rollout page's first grid paint at 1,000 and 10,000 hosts, and the bundle",
  ceiling: '8. The ceiling: durable consumers (hosts) on one nats-server, then on a three-server R3 cluster',
};

let interrupted = false;
process.on('SIGINT', () => {
  // The part in progress cleans up in its finally blocks; a second Ctrl-C exits at once.
  if (interrupted) process.exit(130);
  interrupted = true;
  log('interrupted: cleaning up (Ctrl-C again to exit at once)');
});

for (const part of parts) {
  if (interrupted) break;
  const t0 = performance.now();
  log(`part ${part} (${quick ? 'quick' : 'full'}, ${runs} runs)`);
  try {
    const result =
      part === 'fanout'
        ? await runFanout({ sizes: hostSizes, runs, log, ...(values.hosts || quick ? {} : { extendTo: 10_000 }) })
        : part === 'real-host'
          ? await runRealHost({ counts: quick ? [4] : [4, 16], runs, log })
          : part === 'api'
            ? await runApiLoad({ runs, durationSeconds: quick ? 3 : 5, log })
            : part === 'worker'
              ? await runWorkerFootprint({ runs, idleWindowSeconds: quick ? 3 : 10, log })
              : part === 'notifier'
                ? await runNotifierLoad({ sizes: values.hosts ? hostSizes : quick ? [100] : [1000, 5000], runs, log })
                : part === 'waves'
                  ? await runWaves({ n: values.hosts ? Math.max(...hostSizes) : quick ? 100 : 1000, runs, log })
                  : part === 'ui'
                    ? await runUiGrid({ sizes: values.hosts ? hostSizes : quick ? [1000] : [1000, 10_000], runs: quick ? 2 : Math.min(runs, 3), log })
                    : await runCeiling({ quick, runs: quick ? 2 : Math.min(runs, 3), log });
    sections.push({ title: titles[part], result, seconds: (performance.now() - t0) / 1000 });
  } catch (err) {
    log(`part ${part} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    sections.push({ title: titles[part], result: null, error: err instanceof Error ? err.message : String(err), seconds: (performance.now() - t0) / 1000 });
  }
}

const load = monitor.stop();
const loadAfter = loadAverage();
const totalSeconds = (Date.now() - startedAt.getTime()) / 1000;
const targets = sections.flatMap((s) => s.result?.targets ?? []);
const md: string[] = [
  '# Nebula benchmarks',
  '',
  `Written by \`npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` on ${startedAt.toISOString()} (${(totalSeconds / 60).toFixed(1)} min). Figures are medians with the min-max spread in brackets; every ratio compares figures taken in this same run. Benchmarks print figures; they assert nothing.`,
  '',
  '## Machine',
  '',
  ...machine(),
  `- load while running: load average ${loadBefore[0].toFixed(2)} at the start, ${loadAfter[0].toFixed(2)} at the end, ${load.min.toFixed(2)}-${load.max.toFixed(2)} (median ${load.median.toFixed(2)}) sampled every 5 s; all cores ${(load.busy * 100).toFixed(0)}% busy on average (the benchmark's own processes included)`,
  '',
  '## Targets',
  '',
  targets.length === 0 ? '(no part with a target ran)' : targets.map((t) => `- ${t.met ? 'met' : '**missed**'}: ${t.target}: ${t.value}`).join('\n'),
  '',
];
for (const s of sections) {
  md.push(`## ${s.title}`, '');
  md.push(s.result ? s.result.markdown : `Failed: ${s.error}`);
  md.push('', `(${s.seconds.toFixed(0)} s)`, '');
  for (const [name, text] of Object.entries(s.result?.files ?? {})) writeText(join(outDir, name), text);
}
// What bounds the missed targets: written from profiling sessions (tools/bench/findings.md).
const findings = readFileSync(join(import.meta.dirname, 'findings.md'), 'utf8');
md.push(findings.replace(/^## /, `## ${PARTS.length + 1}. `));
const resultsFile = join(outDir, 'RESULTS.md');
if (values.update && existsSync(resultsFile)) {
  // Only the sections of the parts that ran change; each says when and how it was written.
  let text = readFileSync(resultsFile, 'utf8');
  const how = `Written by \`npm run bench -- ${process.argv.slice(2).join(' ')}\` on ${startedAt.toISOString()}; ${machine().join('; ').replace(/- /g, '')}; load average ${loadBefore[0].toFixed(2)} at the start, ${loadAfter[0].toFixed(2)} at the end.`;
  for (const s of sections)
    text = replaceSection(
      text,
      s.title,
      `${how}\n\n${s.result ? s.result.markdown : `Failed: ${s.error}`}\n\n(${s.seconds.toFixed(0)} s)`,
      /^## (.*)$/m.exec(findings)?.[1] ?? 'What bounds',
    );
  writeText(resultsFile, text);
} else {
  writeText(resultsFile, md.join('\n'));
}
log(`wrote ${resultsFile} in ${(totalSeconds / 60).toFixed(1)} min`);
for (const t of targets) log(`${t.met ? 'met   ' : 'MISSED'} ${t.target}: ${t.value}`);
process.exit(sections.some((s) => s.result === null) ? 1 : 0);
