/**
 * Part "worker": resident memory and CPU of a real worker process (DockerRuntime, the machine's
 * engine) serving five apps of two containers each, read from /proc/<pid>:
 *
 *   five apps created, every container up ─▶ settle 5 s ─▶ idle: `runs` windows (heartbeats and
 *   health checks included) ─▶ per run: an env change of all five apps at once, sampled every 25 ms
 *   until the API reports the five rollouts complete (CPU over that time, peak RSS)
 *
 * The worker measured is the release build (dist/worker/main.js, bundled first when its sources
 * changed, run with plain node: no type stripping), as hosts run it; `BENCH_WORKER_BUILD=source`
 * measures services/worker/src/main.ts run directly instead.
 */

import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { bundleService } from '../src/release/bundle.ts';
import { WORKER_RUNTIME } from '../src/release/plan.ts';
import { rolloutComplete } from './fanout.ts';
import { benchContainersCleanup } from './floor-and-swarm.ts';
import { waitAllAnswer } from './http-check.ts';
import { cpuShare, sampleProc } from './proc-stats.ts';
import { freeRange } from './real-host.ts';
import { type Cell, csv, fixed, mb, mdTable, type PartResult } from './report.ts';
import { ROOT, sleep, startBenchStack, startWorkerProcess, suffix, waitHostsOnline } from './services.ts';
import { summarize } from './stats.ts';

export interface WorkerFootprintOptions {
  runs: number;
  idleWindowSeconds: number;
  log: (s: string) => void;
}

const IMAGE = '127.0.0.1:5000/nebula/echo:1';
const APPS = 5;
const PER_APP = 2;

interface WorkerBuild {
  script: string;
  nodeArgs: string[];
  env: Record<string, string>;
  what: string;
}

/** The worker as measured: the release bundle (built or reused) run as its image runs it, or the TypeScript source. */
async function workerBuild(log: (s: string) => void): Promise<WorkerBuild> {
  if (process.env.BENCH_WORKER_BUILD === 'source') {
    return { script: 'services/worker/src/main.ts', nodeArgs: [], env: {}, what: 'the TypeScript source, run with type stripping' };
  }
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const bundle = await bundleService('worker', { root: ROOT, outRoot: join(ROOT, 'dist'), version });
  log(`  release bundle ${relative(ROOT, bundle.dir)}/main.js (${bundle.built ? 'built' : 'reused'})`);
  const nodeArgs = [...WORKER_RUNTIME.nodeArgs];
  const env = { ...WORKER_RUNTIME.env };
  const settings = [...nodeArgs, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ');
  return {
    script: join(relative(ROOT, bundle.dir), 'main.js'),
    nodeArgs,
    env,
    what: `the release bundle, run with plain node as its image runs it (${settings})`,
  };
}

export async function runWorkerFootprint(opts: WorkerFootprintOptions): Promise<PartResult> {
  const build = await workerBuild(opts.log);
  const stack = await startBenchStack();
  const hostId = `bench-${suffix()}`;
  const rows: Array<Record<string, Cell>> = [];
  const idleRss: number[] = [];
  const idleCpu: number[] = [];
  const busyRss: number[] = [];
  const busyCpu: number[] = [];
  const busyMs: number[] = [];
  try {
    const s = suffix();
    const apps = Array.from({ length: APPS }, (_, i) => ({ name: `wf${i}-${s}`, base: 0 }));
    for (const a of apps) a.base = await freeRange(PER_APP);
    const worker = await startWorkerProcess(
      stack,
      hostId,
      apps.map((a) => a.name),
      { STOP_TIMEOUT_SECONDS: '10', ...build.env },
      { script: build.script, nodeArgs: build.nodeArgs },
    );
    await waitHostsOnline(stack, 1);
    for (const a of apps) {
      const r = await stack.client.call('POST', `/api/v2/apps/${a.name}`, {
        docker_image: IMAGE,
        starting_ports: [{ [String(a.base)]: '80' }],
        containers_per: { server: PER_APP },
        env_vars: { V: '0' },
      });
      if (r.status !== 200) throw new Error(`create ${a.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    await Promise.all(
      apps.map((a) =>
        waitAllAnswer(async () => Array.from({ length: PER_APP }, (_, i) => `http://127.0.0.1:${a.base + i}/`), PER_APP, 'V', '0', 120_000, true),
      ),
    );
    await sleep(5000);
    opts.log(`  worker serving ${APPS} apps x ${PER_APP} containers`);

    for (let run = 1; run <= opts.runs; run++) {
      const a = sampleProc(worker.pid);
      await sleep(opts.idleWindowSeconds * 1000);
      const b = sampleProc(worker.pid);
      idleRss.push(b.rss);
      idleCpu.push(cpuShare(a, b));
      rows.push({ phase: 'idle', run, rss_mb: mb(b.rss), cpu_share: cpuShare(a, b), ms: b.at - a.at });
    }
    for (let run = 0; run <= opts.runs; run++) {
      const a = sampleProc(worker.pid);
      let peak = a.rss;
      let done = false;
      const sampler = (async () => {
        while (!done) {
          peak = Math.max(peak, sampleProc(worker.pid).rss);
          await sleep(25);
        }
      })();
      const ids = await Promise.all(
        apps.map(async (app) => {
          const r = await stack.client.call<{ rollout_id: string }>('PUT', `/api/v2/apps/${app.name}/update`, { env_vars: { V: `r${run}` } });
          if (r.status !== 202) throw new Error(`update ${app.name}: ${r.status}`);
          return r.body.rollout_id;
        }),
      );
      await Promise.all(
        ids.map(async (id) => {
          for (;;) {
            const r = await stack.client.call('GET', `/api/v2/rollouts/${id}`);
            if (r.status === 200 && rolloutComplete(r.body, 1)) return;
            await sleep(25);
          }
        }),
      );
      done = true;
      await sampler;
      const b = sampleProc(worker.pid);
      if (run > 0) {
        busyRss.push(peak);
        busyCpu.push(cpuShare(a, b));
        busyMs.push(b.at - a.at);
        rows.push({ phase: 'rollout', run, rss_mb: mb(peak), cpu_share: cpuShare(a, b), ms: b.at - a.at });
      }
      opts.log(
        `  rollout of ${APPS} apps, run ${run}${run === 0 ? ' (warm-up)' : ''}: ${fixed(b.at - a.at, 0)} ms, CPU ${fixed(cpuShare(a, b) * 100, 0)}%, peak RSS ${fixed(mb(peak))} MB`,
      );
      await sleep(1000);
    }
    for (const app of apps) await stack.client.call('DELETE', `/api/v2/apps/${app.name}`);
  } finally {
    await stack.stop();
    await benchContainersCleanup([hostId]).catch(() => undefined);
  }
  const f = (xs: number[], scale: (x: number) => number, d: number) => {
    const s = summarize(xs.map(scale));
    return `${fixed(s.median, d)} (${fixed(s.min, d)}–${fixed(s.max, d)})`;
  };
  const table = mdTable(
    ['phase', 'RSS (MB)', 'CPU (% of a core)', 'duration (ms)'],
    [
      [`idle, ${APPS} apps, ${opts.idleWindowSeconds} s windows`, f(idleRss, mb, 1), f(idleCpu, (x) => x * 100, 2), '-'],
      [`rollout of all ${APPS} apps (peak RSS)`, f(busyRss, mb, 1), f(busyCpu, (x) => x * 100, 1), f(busyMs, (x) => x, 0)],
    ],
  );
  const idle = summarize(idleRss).median;
  return {
    markdown: [
      `A real worker process (\`${build.script}\`: ${build.what}; DockerRuntime on the machine's engine, default settings: heartbeat every 5 s, health check every 10 s) serving ${APPS} apps of ${PER_APP} containers each (\`${IMAGE}\`). Idle: ${opts.runs} windows of ${opts.idleWindowSeconds} s. Rollout: an env change of all ${APPS} apps at once (all-at-once restart of ${APPS * PER_APP} containers), from the API calls until the API reports every rollout complete; ${opts.runs} runs after a warm-up.`,
      '',
      table,
      '',
      'Raw samples: [worker.csv](worker.csv).',
    ].join('\n'),
    files: { 'worker.csv': csv(rows) },
    targets: [
      {
        target: `idle worker < 80 MB resident (${build.script.endsWith('.js') ? 'release build' : 'source'})`,
        value: `${fixed(mb(idle))} MB`,
        met: mb(idle) < 80,
      },
    ],
  };
}
