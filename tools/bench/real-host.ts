/**
 * Part "real-host": the machine's own Docker engine, one local image, 4 and 16 containers. Each side
 * is timed from the call until every container answers over HTTP with the new value of env var V:
 *
 *   floor             parallel `docker rm -f` + `docker run` of every container (what a script would do)
 *   swarm par=count   `docker service update --env-add` with --update-parallelism = count
 *   swarm par=1       the same, one task at a time (--update-delay 0s --update-monitor 0s, stop-first)
 *   nebula restart    PUT /api/v2/apps/<app>/update {env_vars, rolling_restart: false}: all at once
 *   nebula rolling    the same with rolling_restart: true: one container at a time, the executor path
 *                     of `roll` (roll itself changes no env; this one does, so it is seen from outside)
 *
 * Nebula is the real API, notifier and worker processes (DockerRuntime on the machine's engine).
 * Every side has a 10 s stop grace (the floor's rm -f kills at once; the echo image exits on SIGTERM
 * at once, so no side waits it out), and ROLL_SETTLE_SECONDS=0 with WORKER_SETTLE_SECONDS=0 match Swarm's --update-monitor 0s.
 * Runs are interleaved side by side (run i of every side before run i+1), after one warm-up run.
 */
import { createServer } from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { benchContainersCleanup, floorCleanup, floorReplace, floorSetup, swarmCleanup, swarmSetup, swarmUpdate } from './floor-and-swarm.ts';
import { waitAllAnswer } from './http-check.ts';
import { type Cell, csv, mdTable, type PartResult, ratio } from './report.ts';
import { type BenchStack, startBenchStack, startWorkerProcess, suffix } from './services.ts';
import { fmtMs, fmtSeconds, type Summary, summarize } from './stats.ts';
import { barChart } from './svg.ts';

/** The same image, from the local registry, on every side: Nebula pulls it (a digest check), Swarm resolves it. */
const IMAGE = '127.0.0.1:5000/nebula/echo:1';
const STOP_GRACE_SECONDS = 10;

export interface RealHostOptions {
  counts: number[];
  runs: number;
  log: (s: string) => void;
}

const SIDES = ['floor', 'swarm par=count', 'swarm par=1', 'nebula restart', 'nebula rolling'] as const;
type Side = (typeof SIDES)[number];

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port with `count` free ports after it. */
export async function freeRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const ok = await Promise.all(Array.from({ length: count }, (_, i) => portFree(base + i)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error(`no ${count} free consecutive ports found`);
}

const urls = (count: number, base: number) => async () => Array.from({ length: count }, (_, i) => `http://127.0.0.1:${base + i}/`);

/** What the worker reported per rollout: when its result arrived, and its own pull and apply times. */
type Reported = Map<string, { at: number; pull: number; apply: number }>;

function watchResults(nc: NatsConnection, app: string): Reported {
  const seen: Reported = new Map();
  nc.subscribe(`results.${app}.>`, {
    callback: (_err, m) => {
      const r = m.json<{ rollout_id: string; durations_ms: { pull: number; apply: number } }>();
      seen.set(r.rollout_id, { at: performance.now(), pull: r.durations_ms.pull, apply: r.durations_ms.apply });
    },
  });
  return seen;
}

interface NebulaTiming {
  ms: number;
  /** From the call until the worker's result arrived, and the worker's own pull and apply times. */
  resultMs: number;
  pullMs: number;
  applyMs: number;
}

async function nebulaUpdate(
  stack: BenchStack,
  reported: Reported,
  app: string,
  count: number,
  base: number,
  value: string,
  rolling: boolean,
): Promise<NebulaTiming> {
  const t0 = performance.now();
  const r = await stack.client.call<{ rollout_id: string }>('PUT', `/api/v2/apps/${app}/update`, { env_vars: { V: value }, rolling_restart: rolling });
  if (r.status !== 202) throw new Error(`update ${app}: ${r.status} ${JSON.stringify(r.body)}`);
  await waitAllAnswer(urls(count, base), count, 'V', value, 120_000, true);
  const ms = performance.now() - t0;
  const deadline = Date.now() + 30_000;
  while (!reported.has(r.body.rollout_id) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  const rep = reported.get(r.body.rollout_id);
  return { ms, resultMs: rep ? rep.at - t0 : Number.NaN, pullMs: rep?.pull ?? Number.NaN, applyMs: rep?.apply ?? Number.NaN };
}

interface CountResult {
  count: number;
  bySide: Record<Side, Summary>;
  /** Nebula's sides: the worker's apply time, and the time until its result arrived. */
  nebula: Record<'nebula restart' | 'nebula rolling', { apply: Summary; result: Summary; pull: Summary }>;
  rows: Array<Record<string, Cell>>;
}

async function measureCount(stack: BenchStack, nc: NatsConnection, count: number, opts: RealHostOptions, hostIds: string[]): Promise<CountResult> {
  const app = `rh${count}-${suffix()}`;
  const reported = watchResults(nc, app);
  const nebulaBase = await freeRange(count);
  const floorBase = await freeRange(count);
  const hostId = `bench-${suffix()}`;
  hostIds.push(hostId);
  await startWorkerProcess(stack, hostId, [app], { STOP_TIMEOUT_SECONDS: String(STOP_GRACE_SECONDS), ROLL_SETTLE_SECONDS: '0', WORKER_SETTLE_SECONDS: '0' });
  const created = await stack.client.call('POST', `/api/v2/apps/${app}`, {
    docker_image: IMAGE,
    starting_ports: [{ [String(nebulaBase)]: '80' }],
    containers_per: { server: count },
    env_vars: { V: '0' },
    // The same networking as the floor's and Swarm's containers (the default adds the `nebula` network).
    networks: ['bridge'],
  });
  if (created.status !== 200) throw new Error(`create ${app}: ${created.status} ${JSON.stringify(created.body)}`);
  await waitAllAnswer(urls(count, nebulaBase), count, 'V', '0', 120_000, true);
  await floorSetup(IMAGE, count, floorBase);
  await swarmSetup(IMAGE, count, STOP_GRACE_SECONDS);
  opts.log(`  ${count} containers up on every side`);

  const samples: Record<Side, number[]> = Object.fromEntries(SIDES.map((s) => [s, []])) as unknown as Record<Side, number[]>;
  const rows: Array<Record<string, Cell>> = [];
  const timings: Record<'nebula restart' | 'nebula rolling', NebulaTiming[]> = { 'nebula restart': [], 'nebula rolling': [] };
  const asTiming = (p: Promise<number>) => p.then((ms): NebulaTiming => ({ ms, resultMs: Number.NaN, pullMs: Number.NaN, applyMs: Number.NaN }));
  const measure: Record<Side, (value: string) => Promise<NebulaTiming>> = {
    floor: (v) => asTiming(floorReplace(IMAGE, count, floorBase, v)),
    'swarm par=count': (v) => asTiming(swarmUpdate(count, count, v)),
    'swarm par=1': (v) => asTiming(swarmUpdate(count, 1, v)),
    'nebula restart': (v) => nebulaUpdate(stack, reported, app, count, nebulaBase, v, false),
    'nebula rolling': (v) => nebulaUpdate(stack, reported, app, count, nebulaBase, v, true),
  };
  for (let run = 0; run <= opts.runs; run++) {
    const line: string[] = [];
    for (const side of SIDES) {
      const t = await measure[side](`${side.replace(/\W+/g, '-')}-${run}`);
      line.push(`${side} ${(t.ms / 1000).toFixed(2)} s`);
      if (run > 0) {
        samples[side].push(t.ms);
        if (side === 'nebula restart' || side === 'nebula rolling') timings[side].push(t);
        rows.push({ containers: count, run, side, ms: t.ms, worker_result_ms: t.resultMs, worker_pull_ms: t.pullMs, worker_apply_ms: t.applyMs });
      }
    }
    opts.log(`  ${count} containers, run ${run}${run === 0 ? ' (warm-up)' : ''}: ${line.join(', ')}`);
  }
  await stack.client.call('DELETE', `/api/v2/apps/${app}`);
  await floorCleanup();
  const nebula = (side: 'nebula restart' | 'nebula rolling') => ({
    apply: summarize(timings[side].map((t) => t.applyMs)),
    result: summarize(timings[side].map((t) => t.resultMs)),
    pull: summarize(timings[side].map((t) => t.pullMs)),
  });
  return {
    count,
    bySide: Object.fromEntries(SIDES.map((s) => [s, summarize(samples[s])])) as Record<Side, Summary>,
    nebula: { 'nebula restart': nebula('nebula restart'), 'nebula rolling': nebula('nebula rolling') },
    rows,
  };
}

export async function runRealHost(opts: RealHostOptions): Promise<PartResult> {
  const stack = await startBenchStack();
  const nc = await connect({ ...stack.nats.connectOptions('admin'), name: 'bench' });
  const results: CountResult[] = [];
  const hostIds: string[] = [];
  try {
    for (const count of opts.counts) {
      opts.log(`real-host: ${count} containers`);
      results.push(await measureCount(stack, nc, count, opts, hostIds));
    }
  } finally {
    await nc.close().catch(() => undefined);
    await swarmCleanup().catch((err: unknown) => opts.log(`swarm cleanup failed: ${String(err)}`));
    await stack.stop();
    await benchContainersCleanup(hostIds).catch((err: unknown) => opts.log(`container cleanup failed: ${String(err)}`));
  }
  const table = mdTable(
    [
      'containers',
      ...SIDES,
      'nebula restart / floor',
      'nebula rolling / floor',
      'swarm par=count / floor',
      'swarm par=1 / floor',
      'nebula restart / swarm par=count',
      'nebula rolling / swarm par=1',
    ],
    results.map((r) => {
      const m = (s: Side) => r.bySide[s].median;
      return [
        r.count,
        ...SIDES.map((s) => fmtSeconds(r.bySide[s])),
        ratio(m('nebula restart'), m('floor')),
        ratio(m('nebula rolling'), m('floor')),
        ratio(m('swarm par=count'), m('floor')),
        ratio(m('swarm par=1'), m('floor')),
        ratio(m('nebula restart'), m('swarm par=count')),
        ratio(m('nebula rolling'), m('swarm par=1')),
      ];
    }),
  );
  const breakdown = mdTable(
    [
      'containers',
      'side',
      'call until all answer',
      'call until the worker reported',
      'worker: pull (registry check)',
      'worker: apply (stop, remove, create, start)',
    ],
    results.flatMap((r) =>
      (['nebula restart', 'nebula rolling'] as const).map((side) => [
        r.count,
        side,
        fmtMs(r.bySide[side]),
        fmtMs(r.nebula[side].result),
        fmtMs(r.nebula[side].pull),
        fmtMs(r.nebula[side].apply),
      ]),
    ),
  );
  const chart = barChart({
    title: 'Real host: call until every container answers with the new env (median, min-max)',
    yLabel: 'seconds',
    categories: results.map((r) => `${r.count} containers`),
    series: SIDES.map((s) => ({
      name: s,
      values: results.map((r) => r.bySide[s].median / 1000),
      err: results.map((r) => [r.bySide[s].min / 1000, r.bySide[s].max / 1000] as [number, number]),
    })),
  });
  const targets: PartResult['targets'] = [];
  for (const r of results) {
    const m = (s: Side) => r.bySide[s].median;
    targets.push({
      target: `real-host restart within 1.3x of the docker floor (${r.count} containers)`,
      value: ratio(m('nebula restart'), m('floor')),
      met: m('nebula restart') / m('floor') <= 1.3,
    });
    targets.push({
      target: `real-host restart faster than Swarm par=count (${r.count} containers)`,
      value: `${fmtSeconds(r.bySide['nebula restart'])} vs ${fmtSeconds(r.bySide['swarm par=count'])}`,
      met: m('nebula restart') < m('swarm par=count'),
    });
    targets.push({
      target: `real-host rolling restart faster than Swarm par=1 (${r.count} containers)`,
      value: `${fmtSeconds(r.bySide['nebula rolling'])} vs ${fmtSeconds(r.bySide['swarm par=1'])}`,
      met: m('nebula rolling') < m('swarm par=1'),
    });
  }
  const markdown = [
    `The machine's Docker engine, image \`${IMAGE}\` (busybox httpd answering its env), published on 127.0.0.1. Time from the call (API request, \`docker service update\`, first \`docker rm -f\`) until every container answers \`GET /\` with the new value of \`V\` (each container polled every 10 ms on a fresh connection; Swarm's containers and their random host ports are listed with \`docker ps\` on each round). Nebula: real API, notifier and worker processes (worker: DockerRuntime, \`STOP_TIMEOUT_SECONDS=${STOP_GRACE_SECONDS}\`, \`ROLL_SETTLE_SECONDS=0\`, \`WORKER_SETTLE_SECONDS=0\`); "restart" is an env change with \`rolling_restart: false\` (all at once), "rolling" the same with \`rolling_restart: true\` (one at a time, the path \`roll\` takes). Nebula's app has \`networks: ["bridge"]\`, the networking of the floor's and Swarm's containers (the default also joins the \`nebula\` network; see section 5). Swarm: \`--update-delay 0s --update-monitor 0s --update-order stop-first\`, \`--stop-grace-period ${STOP_GRACE_SECONDS}s\`, publish mode=host. Floor: parallel \`docker rm -f\` + \`docker run\`. Median of ${opts.runs} interleaved runs after a warm-up.`,
    '',
    table,
    '',
    '![real host](real-host.svg)',
    '',
    "Where Nebula's time goes (the worker's own durations, from its results):",
    '',
    breakdown,
    '',
    'Raw runs: [real-host.csv](real-host.csv).',
  ].join('\n');
  return { markdown, files: { 'real-host.csv': csv(results.flatMap((r) => r.rows)), 'real-host.svg': chart }, targets };
}
