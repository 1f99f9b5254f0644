/**
 * Part "api": the API process under load from autocannon (100 connections, fixed duration), on a
 * throwaway database and its own nats-server, the notifier running beside it:
 *
 *   reads            GET /api/v2/apps/<app>
 *   writes, 100 apps PUT /api/v2/apps/<app>/update (an env change), each connection its own app
 *   writes, one app  the same, every connection on one app (its revisions are numbered in turn)
 *
 * A write answers once the revision, its rollout and its outbox row are committed; the outbox relay
 * publishes it to JetStream after. After each write round the bench waits until the relay has
 * published every write (its `nebula_api_outbox_published` metric) and reports that drain time.
 * Rounds alternate reads and writes; the first round is a warm-up.
 */
import autocannon from 'autocannon';
import { cpuShare, sampleProc } from './proc-stats.ts';
import { type Cell, csv, fixed, mb, mdTable, type PartResult } from './report.ts';
import { type BenchStack, requireApi, sleep, startBenchStack, suffix } from './services.ts';
import { type Summary, summarize } from './stats.ts';
import { barChart } from './svg.ts';

export interface ApiLoadOptions {
  runs: number;
  durationSeconds: number;
  log: (s: string) => void;
}

const CONNECTIONS = 100;
const KINDS = ['reads', 'writes, 100 apps', 'writes, one app'] as const;
type Kind = (typeof KINDS)[number];

const CONFIG = {
  docker_image: '127.0.0.1:5000/nebula/echo:1',
  starting_ports: [{ '18080': '80' }],
  containers_per: { server: 2 },
  env_vars: { MODE: 'bench', REGION: 'local', FEATURE_A: 'on', FEATURE_B: 'off', V: '0' },
};

async function publishedCount(stack: BenchStack): Promise<number> {
  const res = await fetch(`${stack.client.url}/metrics`, { headers: { authorization: `Bearer ${stack.client.token}` } });
  const m = /^nebula_api_outbox_published(?:\{[^}]*\})? (\d+)/m.exec(await res.text());
  return Number(m?.[1] ?? Number.NaN);
}

interface Round {
  kind: Kind;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  ok: number;
  apiCpu: number;
  apiRss: number;
  drainMs: number | null;
}

async function load(stack: BenchStack, kind: Kind, seconds: number, apps: { read: string; writes: string[]; hot: string }): Promise<autocannon.Result> {
  const headers = { authorization: `Bearer ${stack.client.token}`, 'content-type': 'application/json' };
  if (kind === 'reads') {
    return autocannon({ url: `${stack.client.url}/api/v2/apps/${apps.read}`, connections: CONNECTIONS, duration: seconds, headers });
  }
  let nextConnection = 0;
  let seq = 0;
  return autocannon({
    url: stack.client.url,
    connections: CONNECTIONS,
    duration: seconds,
    headers,
    requests: [
      {
        method: 'PUT',
        setupRequest: (req, context) => {
          const ctx = context as { app?: string };
          ctx.app ??= kind === 'writes, one app' ? apps.hot : apps.writes[nextConnection++ % apps.writes.length];
          seq += 1;
          return { ...req, path: `/api/v2/apps/${ctx.app}/update`, body: JSON.stringify({ env_vars: { V: String(seq) } }) };
        },
      },
    ],
  });
}

export async function runApiLoad(opts: ApiLoadOptions): Promise<PartResult> {
  const stack = await startBenchStack();
  const rounds: Round[] = [];
  try {
    const s = suffix();
    const apps = { read: `read-${s}`, hot: `hot-${s}`, writes: Array.from({ length: CONNECTIONS }, (_, i) => `w${i}-${s}`) };
    for (const name of [apps.read, apps.hot, ...apps.writes]) {
      const r = await stack.client.call('POST', `/api/v2/apps/${name}`, CONFIG);
      if (r.status !== 200) throw new Error(`create ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    let expectedPublished = 2 + apps.writes.length;
    for (let run = 0; run <= opts.runs; run++) {
      for (const kind of KINDS) {
        const seconds = run === 0 ? Math.min(2, opts.durationSeconds) : opts.durationSeconds;
        const p0 = sampleProc(requireApi(stack).pid);
        const res = await load(stack, kind, seconds, apps);
        const p1 = sampleProc(requireApi(stack).pid);
        let drainMs: number | null = null;
        if (kind !== 'reads') {
          // Every committed write is published: wait for the relay to catch up.
          expectedPublished += res['2xx'];
          const t0 = performance.now();
          for (;;) {
            const n = await publishedCount(stack);
            if (n >= expectedPublished) break;
            if (performance.now() - t0 > 120_000) throw new Error(`outbox relay published ${n} of ${expectedPublished}`);
            await sleep(20);
          }
          drainMs = performance.now() - t0;
        }
        const round: Round = {
          kind,
          rps: res.requests.average,
          p50: res.latency.p50,
          p99: res.latency.p99,
          non2xx: res.non2xx,
          errors: res.errors,
          ok: res['2xx'],
          apiCpu: cpuShare(p0, p1),
          apiRss: p1.rss,
          drainMs,
        };
        if (run > 0) rounds.push(round);
        opts.log(
          `  ${kind} run ${run}${run === 0 ? ' (warm-up)' : ''}: ${fixed(round.rps, 0)} req/s, p50 ${round.p50} ms, p99 ${round.p99} ms, non-2xx ${round.non2xx}, errors ${round.errors}${drainMs !== null ? `, published ${fixed(drainMs, 0)} ms after the load` : ''}`,
        );
        await sleep(500);
      }
    }
  } finally {
    await stack.stop();
  }

  const by = (k: Kind) => rounds.filter((r) => r.kind === k);
  const sum = (k: Kind, f: (r: Round) => number): Summary => summarize(by(k).map(f));
  const fmt = (s: Summary, d = 0) => `${fixed(s.median, d)} (${fixed(s.min, d)}–${fixed(s.max, d)})`;
  const table = mdTable(
    [
      'load',
      'requests/s',
      'p50 (ms)',
      'p99 (ms)',
      'non-2xx / errors (all runs)',
      'API process CPU (cores)',
      'API RSS (MB)',
      'all published, after the load ends (ms)',
    ],
    KINDS.map((k) => [
      k,
      fmt(sum(k, (r) => r.rps)),
      fmt(
        sum(k, (r) => r.p50),
        1,
      ),
      fmt(
        sum(k, (r) => r.p99),
        1,
      ),
      `${by(k).reduce((a, r) => a + r.non2xx, 0)} / ${by(k).reduce((a, r) => a + r.errors, 0)}`,
      fixed(sum(k, (r) => r.apiCpu).median, 2),
      fixed(mb(Math.max(...by(k).map((r) => r.apiRss))), 0),
      k === 'reads' ? '-' : fmt(sum(k, (r) => r.drainMs ?? Number.NaN)),
    ]),
  );
  const chart = barChart({
    title: `API at ${CONNECTIONS} connections: latency (median of runs)`,
    yLabel: 'ms',
    categories: [...KINDS],
    series: [
      {
        name: 'p50',
        values: KINDS.map((k) => sum(k, (r) => r.p50).median),
        err: KINDS.map((k) => [sum(k, (r) => r.p50).min, sum(k, (r) => r.p50).max] as [number, number]),
      },
      {
        name: 'p99',
        values: KINDS.map((k) => sum(k, (r) => r.p99).median),
        err: KINDS.map((k) => [sum(k, (r) => r.p99).min, sum(k, (r) => r.p99).max] as [number, number]),
      },
    ],
  });
  const rpsChart = barChart({
    title: `API at ${CONNECTIONS} connections: requests/s (median of runs)`,
    yLabel: 'requests/s',
    categories: [...KINDS],
    series: [
      {
        name: 'requests/s',
        values: KINDS.map((k) => sum(k, (r) => r.rps).median),
        err: KINDS.map((k) => [sum(k, (r) => r.rps).min, sum(k, (r) => r.rps).max] as [number, number]),
      },
    ],
  });
  const reads = sum('reads', (r) => r.rps);
  const w100 = sum('writes, 100 apps', (r) => r.p99);
  const w1 = sum('writes, one app', (r) => r.p99);
  const targets: PartResult['targets'] = [
    { target: 'API reads > 5,000 requests/s at 100 clients', value: `${fixed(reads.median, 0)} req/s`, met: reads.median > 5000 },
    { target: 'API writes < 50 ms p99 at 100 clients (100 apps)', value: `${fixed(w100.median, 0)} ms`, met: w100.median < 50 },
    { target: 'API writes < 50 ms p99 at 100 clients (one app)', value: `${fixed(w1.median, 0)} ms`, met: w1.median < 50 },
  ];
  const markdown = [
    `autocannon 9 in the bench process, ${CONNECTIONS} connections, ${opts.durationSeconds} s per round, ${opts.runs} rounds after a warm-up (median, min-max), against the API process (bearer auth) with its PostgreSQL database and nats-server; the notifier runs beside it. The load generator shares the machine's cores with the API and PostgreSQL. Writes are \`PUT /api/v2/apps/<app>/update\` with a new env value: each is a committed revision + rollout + outbox row, published to JetStream by the outbox relay; the last column is how long after the load ended the relay had published every one of them.`,
    '',
    table,
    '',
    '![api latency](api-latency.svg)',
    '',
    '![api throughput](api-rps.svg)',
    '',
    'Raw rounds: [api.csv](api.csv).',
  ].join('\n');
  const rows: Array<Record<string, Cell>> = rounds.map((r) => ({
    load: r.kind,
    rps: r.rps,
    p50_ms: r.p50,
    p99_ms: r.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    ok: r.ok,
    api_cpu_cores: r.apiCpu,
    api_rss_mb: mb(r.apiRss),
    drain_ms: r.drainMs ?? '',
  }));
  return { markdown, files: { 'api.csv': csv(rows), 'api-latency.svg': chart, 'api-rps.svg': rpsChart }, targets };
}
