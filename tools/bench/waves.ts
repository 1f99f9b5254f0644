/**
 * Part "waves": one change to N simulated hosts in waves `[1, 10, 100]` without bake time, against the
 * same change in one wave of 100%, on one stack (ratios taken in the same run).
 *
 *   start N hosts (sim-fleet.ts) ─▶ all online
 *   per run, alternating:  PUT env change, rollout_strategy null            ─▶ state succeeded  (plain)
 *                          PUT env change, rollout_strategy waves [1,10,100] ─▶ state succeeded  (waves)
 *                          each wave's time: started_at → finished_at, from GET /api/v2/rollouts/<id>
 *
 * The controller's overhead is waves / plain: what going through three waves costs over going at once
 * (three messages instead of one, a controller tick between waves, the results of each wave waited for).
 */
import type { RolloutProgress } from '@nebula/contracts';
import { HOST_OPTIONS } from './fanout.ts';
import { type Cell, csv, fixed, mdTable, type PartResult, ratio } from './report.ts';
import { type ApiClient, sleep, startBenchStack, suffix, waitHostsOnline } from './services.ts';
import { processesFor, type SimHostProcess, startSimHosts } from './sim-fleet.ts';
import { fmtMs, type Summary, summarize } from './stats.ts';

const IMAGE = 'bench/sim:1';
const WAVES = [1, 10, 100];

export interface WavesOptions {
  n: number;
  runs: number;
  log: (s: string) => void;
}

const FINAL = new Set(['succeeded', 'failed', 'aborted', 'rolled_back']);

async function waitEnded(client: ApiClient, id: string, timeoutMs: number): Promise<{ at: number; progress: RolloutProgress }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const r = await client.call<RolloutProgress>('GET', `/api/v2/rollouts/${id}?hosts_limit=1&failures_limit=1`);
    const at = performance.now();
    if (r.status !== 200) throw new Error(`GET /api/v2/rollouts/${id}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    if (FINAL.has(r.body.state)) return { at, progress: r.body };
    if (at > deadline) throw new Error(`rollout ${id} not ended after ${timeoutMs} ms: ${JSON.stringify(r.body).slice(0, 300)}`);
    await sleep(25);
  }
}

const span = (w: RolloutProgress['waves'][number]) => (w.started_at && w.finished_at ? Date.parse(w.finished_at) - Date.parse(w.started_at) : Number.NaN);

export async function runWaves(opts: WavesOptions): Promise<PartResult> {
  const { n } = opts;
  const stack = await startBenchStack();
  const children: SimHostProcess[] = [];
  const plain: number[] = [];
  const waved: number[] = [];
  const perWave: number[][] = WAVES.map(() => []);
  const gaps: number[] = [];
  const rows: Array<Record<string, Cell>> = [];
  try {
    const app = `waves-${suffix()}`;
    const created = await stack.client.call('POST', `/api/v2/apps/${app}`, { docker_image: IMAGE, containers_per: { server: 1 }, env_vars: { V: '0' } });
    if (created.status !== 200) throw new Error(`create app: ${created.status} ${JSON.stringify(created.body)}`);
    const { startMs } = await startSimHosts(stack, children, { n, app, image: IMAGE, options: HOST_OPTIONS });
    opts.log(`  ${n} hosts started in ${(startMs / 1000).toFixed(1)} s (${processesFor(n)} processes)`);
    await waitHostsOnline(stack, n);
    const timeoutMs = 120_000 + n * 50;
    // Run 0 warms up and is not counted.
    for (let run = 0; run <= opts.runs; run++) {
      for (const kind of ['plain', 'waves'] as const) {
        const strategy = kind === 'plain' ? null : { waves: WAVES, bake_seconds: 0 };
        const res = await stack.client.call<{ rollout_id: string }>('PUT', `/api/v2/apps/${app}/update`, {
          env_vars: { V: `${kind}-${run}` },
          rollout_strategy: strategy,
        });
        const t0 = performance.now();
        if (res.status !== 202) throw new Error(`update: ${res.status} ${JSON.stringify(res.body)}`);
        const ended = await waitEnded(stack.client, res.body.rollout_id, timeoutMs);
        const p = ended.progress;
        if (p.state !== 'succeeded') throw new Error(`${kind} rollout ended ${p.state}: ${p.abort_reason ?? ''}`);
        const ms = ended.at - t0;
        const waves = p.waves.map(span);
        // Between waves: the controller's tick from one wave's end to the next one's start.
        const between = p.waves.slice(1).map((w, i) => Date.parse(w.started_at ?? '') - Date.parse(p.waves[i]?.finished_at ?? ''));
        if (run > 0) {
          (kind === 'plain' ? plain : waved).push(ms);
          if (kind === 'waves') {
            for (const [i, ms] of waves.entries()) perWave[i]?.push(ms);
            gaps.push(...between);
          }
          rows.push({ hosts: n, run, kind, succeeded_ms: ms, ...Object.fromEntries(waves.map((w, i) => [`wave_${i + 1}_ms`, w])) });
        }
        opts.log(
          `  N=${n} run ${run}${run === 0 ? ' (warm-up)' : ''} ${kind}: ${ms.toFixed(0)} ms${kind === 'waves' ? ` (waves ${waves.map((w) => w.toFixed(0)).join(' / ')} ms)` : ''}`,
        );
        await sleep(300);
      }
    }
  } finally {
    await Promise.all(children.map((c) => c.stop().catch(() => undefined)));
    await stack.stop();
  }
  const p = summarize(plain);
  const w = summarize(waved);
  const waveSummaries: Summary[] = perWave.map(summarize);
  const table = mdTable(
    ['hosts', 'one wave of 100%', `waves [${WAVES.join(', ')}]`, 'waves / one wave', ...WAVES.map((x, i) => `wave ${i + 1} (${x}%)`), 'between waves'],
    [[n, fmtMs(p), fmtMs(w), ratio(w.median, p.median), ...waveSummaries.map(fmtMs), fmtMs(summarize(gaps))]],
  );
  const markdown = [
    `${n} simulated hosts (the real worker over the in-memory runtime, as in the fan-out), real API and notifier processes (the notifier runs the rollout controller). Each run makes two changes: one with no strategy (one wave of 100%) and one in waves \`[${WAVES.join(', ')}]\` with no bake time; each figure is the median of ${opts.runs} runs after a warm-up (min-max in brackets), from the API call returning to \`GET /api/v2/rollouts/<id>\` saying \`succeeded\` (polled every 25 ms). A wave's time is its \`started_at\` to \`finished_at\` as the controller recorded them; "between waves" is one wave's end to the next one's start (the controller's tick).`,
    '',
    table,
    '',
    `The controller's overhead (waves / one wave): ${ratio(w.median, p.median)}, ${fixed(w.median - p.median, 0)} ms.`,
    '',
    'Raw runs: [waves.csv](waves.csv).',
  ].join('\n');
  return { markdown, files: { 'waves.csv': csv(rows) }, targets: [] };
}
