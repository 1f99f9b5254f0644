/**
 * Part "fanout": one change reaching N simulated hosts.
 *
 * Per N, a fresh stack (nats-server, database, api and notifier processes), then:
 *
 *   create app ─▶ fork host processes ─▶ go: N workers start ─▶ APPS has N consumers   (start time)
 *             ─▶ notifier has N online hosts (so rollouts expect them) ─▶ idle NATS sample
 *   per run:  PUT env change ─▶ API returns (t0) ─▶ N "applied" results seen on results.<app>.>   (a)
 *                                              ─▶ GET /api/v2/rollouts/<id> says complete       (b)
 *   stop hosts ─▶ stop stack
 *
 * Each simulated host joins through the API with a join token (its own key, its own NATS credential
 * and connection, consumers made by the API), and signs its results and heartbeats with its key: the
 * notifier checks every one of them.
 *
 * (a) counts results, which a worker publishes (and has acked by JetStream) right before it acks
 * the app message; (b) includes the notifier's batched writes (NOTIFIER_FLUSH_INTERVAL_MS apart at most) and the API's
 * query. Hosts are spread over a few child processes so that a 2-core machine can hold them.
 */
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { waitFor } from '@nebula/test-kit';
import { cpuShare, natsServerPid, sampleProc } from './proc-stats.ts';
import { type Cell, csv, fixed, mb, mdTable, type PartResult, ratio } from './report.ts';
import { type ApiClient, requireApi, sleep, startBenchStack, suffix, waitHostsOnline } from './services.ts';
import { processesFor, type SimHostProcess, startSimHosts } from './sim-fleet.ts';
import { fmtMs, type Summary, summarize } from './stats.ts';
import { lineChart } from './svg.ts';

const IMAGE = 'bench/sim:1';
/**
 * Simulated hosts heartbeat every 30 s (default 5 s): the simulator's own load stays out of the figures.
 * No settle watch (default 10 s): the in-memory runtime's containers never exit, so it would only add its wait.
 */
export const HOST_OPTIONS = { heartbeatIntervalMs: 30_000, settleMs: 0 };

export interface FanoutOptions {
  sizes: number[];
  /** After the last size, double N up to this while the machine holds (see `machineHolds`). */
  extendTo?: number;
  runs: number;
  log: (s: string) => void;
}

interface SizeResult {
  n: number;
  processes: number;
  startMs: number;
  applied: Summary;
  complete: Summary;
  callMs: Summary;
  natsRssIdle: number;
  natsRssBase: number;
  natsRssPeak: number;
  natsIdleCpu: number;
  natsCpuStartMs: number;
  natsCpuPerRollout: Summary;
  /** CPU ms per rollout of the other processes: the simulated hosts (all), the notifier, the API. */
  hostsCpuPerRollout: Summary;
  notifierCpuPerRollout: Summary;
  apiCpuPerRollout: Summary;
  rows: Array<Record<string, Cell>>;
}

/** True once the rollout endpoint says every expected host reported and `n` hosts applied. */
export function rolloutComplete(body: Record<string, unknown>, n: number): boolean {
  // The extended shape (rolloutProgressSchema): counts and `complete`.
  if (typeof body.complete === 'boolean') return body.complete && Number(body.applied ?? 0) >= n;
  // The basic shape: expected, reported and pending host lists.
  const pending = body.pending_hosts as unknown[] | undefined;
  const hosts = (body.hosts as Array<{ status: string }> | undefined) ?? [];
  return pending !== undefined && pending.length === 0 && hosts.filter((h) => h.status === 'applied').length >= n;
}

async function waitComplete(client: ApiClient, id: string, n: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const r = await client.call('GET', `/api/v2/rollouts/${id}`);
    const at = performance.now();
    if (r.status === 200 && rolloutComplete(r.body, n)) return at;
    if (at > deadline) throw new Error(`rollout ${id} not complete after ${timeoutMs} ms: ${JSON.stringify(r.body).slice(0, 300)}`);
    await sleep(20);
  }
}

async function measureSize(n: number, opts: FanoutOptions): Promise<SizeResult> {
  const stack = await startBenchStack();
  const k = processesFor(n);
  const children: SimHostProcess[] = [];
  const nc = await connect(stack.nats.connectOptions('admin', { name: 'bench' }));
  try {
    const natsPid = natsServerPid(stack.nats.port);
    const app = `fan-${suffix()}`;
    const created = await stack.client.call('POST', `/api/v2/apps/${app}`, { docker_image: IMAGE, containers_per: { server: 1 }, env_vars: { V: '0' } });
    if (created.status !== 200) throw new Error(`create app: ${created.status} ${JSON.stringify(created.body)}`);
    const base = sampleProc(natsPid);
    const { startMs } = await startSimHosts(stack, children, { n, app, image: IMAGE, options: HOST_OPTIONS });
    const afterStart = sampleProc(natsPid);
    opts.log(`  ${n} hosts started with their consumers in ${(startMs / 1000).toFixed(1)} s (${k} processes)`);

    await waitHostsOnline(stack, n);
    const idle0 = sampleProc(natsPid);
    await sleep(3000);
    const idle1 = sampleProc(natsPid);

    // Results as they arrive: per rollout, the time the n-th "applied" came in.
    const appliedAt = new Map<string, { hosts: Set<string>; at: number }>();
    const sub = nc.subscribe(`results.${app}.>`, {
      callback: (_err, m) => {
        const r = m.json<{ rollout_id: string; host: string; status: string }>();
        if (r.status !== 'applied') return;
        let e = appliedAt.get(r.rollout_id);
        if (!e) {
          e = { hosts: new Set(), at: 0 };
          appliedAt.set(r.rollout_id, e);
        }
        e.hosts.add(r.host);
        if (e.hosts.size === n) e.at = performance.now();
      },
    });

    const rows: Array<Record<string, Cell>> = [];
    const applied: number[] = [];
    const complete: number[] = [];
    const calls: number[] = [];
    const cpu: number[] = [];
    const otherCpu = { hosts: [] as number[], notifier: [] as number[], api: [] as number[] };
    const others = () => ({
      hosts: children.reduce((a, c) => a + sampleProc(c.proc.pid!).cpuMs, 0),
      notifier: sampleProc(stack.notifier.pid).cpuMs,
      api: sampleProc(requireApi(stack).pid).cpuMs,
    });
    let peak = idle1.rss;
    const timeoutMs = 60_000 + n * 20;
    // Run 0 warms up (JIT, connection pools) and is not counted.
    for (let run = 0; run <= opts.runs; run++) {
      const s0 = sampleProc(natsPid);
      const o0 = others();
      const tCall = performance.now();
      const res = await stack.client.call<{ rollout_id: string }>('PUT', `/api/v2/apps/${app}/update`, { env_vars: { V: `r${run}` } });
      const tReturned = performance.now();
      if (res.status !== 202) throw new Error(`update: ${res.status} ${JSON.stringify(res.body)}`);
      const id = res.body.rollout_id;
      const tComplete = await waitComplete(stack.client, id, n, timeoutMs);
      const tApplied = await waitFor(
        `${n} applied results`,
        () => {
          const at = appliedAt.get(id)?.at;
          return at ? at : undefined;
        },
        timeoutMs,
        5,
      );
      const s1 = sampleProc(natsPid);
      const o1 = others();
      peak = Math.max(peak, s1.rss);
      if (run > 0) {
        otherCpu.hosts.push(o1.hosts - o0.hosts);
        otherCpu.notifier.push(o1.notifier - o0.notifier);
        otherCpu.api.push(o1.api - o0.api);
        applied.push(tApplied - tReturned);
        complete.push(tComplete - tReturned);
        calls.push(tReturned - tCall);
        cpu.push(s1.cpuMs - s0.cpuMs);
        rows.push({
          hosts: n,
          run,
          api_call_ms: tReturned - tCall,
          all_applied_ms: tApplied - tReturned,
          api_complete_ms: tComplete - tReturned,
          nats_cpu_ms: s1.cpuMs - s0.cpuMs,
          hosts_cpu_ms: o1.hosts - o0.hosts,
          notifier_cpu_ms: o1.notifier - o0.notifier,
          api_cpu_ms: o1.api - o0.api,
          nats_rss_mb: mb(s1.rss),
        });
      }
      opts.log(
        `  N=${n} run ${run}${run === 0 ? ' (warm-up)' : ''}: applied ${(tApplied - tReturned).toFixed(0)} ms, complete ${(tComplete - tReturned).toFixed(0)} ms`,
      );
      await sleep(300);
    }
    sub.unsubscribe();
    return {
      n,
      processes: k,
      startMs,
      applied: summarize(applied),
      complete: summarize(complete),
      callMs: summarize(calls),
      natsRssBase: base.rss,
      natsRssIdle: idle1.rss,
      natsRssPeak: peak,
      natsIdleCpu: cpuShare(idle0, idle1),
      natsCpuStartMs: afterStart.cpuMs - base.cpuMs,
      natsCpuPerRollout: summarize(cpu),
      hostsCpuPerRollout: summarize(otherCpu.hosts),
      notifierCpuPerRollout: summarize(otherCpu.notifier),
      apiCpuPerRollout: summarize(otherCpu.api),
      rows,
    };
  } finally {
    await Promise.all(children.map((c) => c.stop().catch(() => undefined)));
    await nc.close().catch(() => undefined);
    await stack.stop();
  }
}

function memAvailableBytes(): number {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
}

/**
 * Whether doubling N looks safe after `r`: its hosts started within a minute, its rollouts completed
 * within 10 s, and memory for twice as many hosts is available (measured: a few hundred kB per host
 * in nats-server and as much again in the simulators).
 */
function machineHolds(r: SizeResult): boolean {
  return r.startMs < 60_000 && r.complete.median < 10_000 && memAvailableBytes() > 8 * 2 ** 30;
}

export async function runFanout(opts: FanoutOptions): Promise<PartResult> {
  const results: SizeResult[] = [];
  const sizes = [...opts.sizes];
  for (let i = 0; i < sizes.length; i++) {
    const n = sizes[i]!;
    opts.log(`fanout: N=${n}`);
    const r = await measureSize(n, opts);
    results.push(r);
    if (i === sizes.length - 1 && opts.extendTo !== undefined && n * 2 <= opts.extendTo) {
      if (machineHolds(r)) sizes.push(n * 2);
      else opts.log(`fanout: stopping at N=${n}: the machine would not hold twice as many`);
    }
  }
  const one = results.find((r) => r.n === 1);
  const perK = (r: SizeResult, v: number) => v / Math.max(r.n / 1000, 0.001);
  const table = mdTable(
    ['hosts', 'all applied + acked (a)', 'API says complete (b)', '(a) T(N)/T(1)', '(b) T(N)/T(1)', 'API call', 'start + consumers'],
    results.map((r) => [
      r.n,
      fmtMs(r.applied),
      fmtMs(r.complete),
      one ? ratio(r.applied.median, one.applied.median) : 'n/a',
      one ? ratio(r.complete.median, one.complete.median) : 'n/a',
      fmtMs(r.callMs),
      `${(r.startMs / 1000).toFixed(1)} s`,
    ]),
  );
  const natsTable = mdTable(
    [
      'hosts',
      'NATS RSS idle (MB)',
      'RSS over empty, per 1,000 hosts (MB)',
      'idle CPU (% of a core)',
      'idle CPU per 1,000 hosts (%)',
      'CPU per rollout (ms)',
      'CPU per rollout per 1,000 hosts (ms)',
      'CPU to start the hosts (s)',
    ],
    results.map((r) => [
      r.n,
      fixed(mb(r.natsRssIdle)),
      r.n >= 100 ? fixed(perK(r, mb(r.natsRssIdle - r.natsRssBase))) : 'n/a',
      fixed(r.natsIdleCpu * 100, 2),
      r.n >= 100 ? fixed(perK(r, r.natsIdleCpu * 100), 2) : 'n/a',
      fixed(r.natsCpuPerRollout.median, 0),
      r.n >= 100 ? fixed(perK(r, r.natsCpuPerRollout.median), 0) : 'n/a',
      fixed(r.natsCpuStartMs / 1000, 1),
    ]),
  );
  const cpuTable = mdTable(
    ['hosts', 'nats-server', 'simulated hosts (all)', 'notifier', 'API (incl. the 20 ms polls)', 'sum', 'sum / 2 cores vs (b)'],
    results.map((r) => {
      const sum = r.natsCpuPerRollout.median + r.hostsCpuPerRollout.median + r.notifierCpuPerRollout.median + r.apiCpuPerRollout.median;
      return [
        r.n,
        fixed(r.natsCpuPerRollout.median, 0),
        fixed(r.hostsCpuPerRollout.median, 0),
        fixed(r.notifierCpuPerRollout.median, 0),
        fixed(r.apiCpuPerRollout.median, 0),
        fixed(sum, 0),
        `${fixed(sum / 2, 0)} ms vs ${fixed(r.complete.median, 0)} ms`,
      ];
    }),
  );
  const chart = lineChart({
    title: 'Fan-out: time from the API call to N hosts (median)',
    xLabel: 'simulated hosts (log scale)',
    yLabel: 'ms',
    logX: true,
    series: [
      { name: '(a) all applied + acked', points: results.map((r) => [r.n, r.applied.median]) },
      { name: '(b) API says complete', points: results.map((r) => [r.n, r.complete.median]) },
    ],
  });
  const startChart = lineChart({
    title: 'Fan-out: N hosts start and create their consumers',
    xLabel: 'simulated hosts (log scale)',
    yLabel: 's',
    logX: true,
    series: [{ name: 'start + consumers', points: results.map((r) => [r.n, r.startMs / 1000]) }],
  });
  const k1000 = results.find((r) => r.n === 1000);
  const targets: PartResult['targets'] = [];
  if (k1000) {
    targets.push({ target: '1,000 hosts complete in < 1.5 s (median, API says complete)', value: fmtMs(k1000.complete), met: k1000.complete.median < 1500 });
    if (one)
      targets.push({
        target: '1,000 hosts within 5x of one host (API says complete)',
        value: ratio(k1000.complete.median, one.complete.median),
        met: k1000.complete.median / one.complete.median <= 5,
      });
    if (one)
      targets.push({
        target: '1,000 hosts within 5x of one host (all applied + acked)',
        value: ratio(k1000.applied.median, one.applied.median),
        met: k1000.applied.median / one.applied.median <= 5,
      });
  }
  const markdown = [
    `Simulated hosts: the real worker (\`createWorker\`) with the in-memory \`FakeRuntime\`, each with its own NATS connection and durable consumer, spread over 1-4 child processes; real API and notifier processes, a throwaway PostgreSQL database and a dedicated nats-server, all fresh for each N. Each figure is the median of ${opts.runs} runs after one warm-up (min-max in brackets). Times are from the API call returning (202) to (a) the N-th \`applied\` result on \`results.<app>.>\` (a worker publishes it, JetStream-acked, right before it acks the app message) and (b) \`GET /api/v2/rollouts/<id>\` reporting every host applied (polled every 20 ms). Simulated hosts heartbeat every 30 s.`,
    '',
    table,
    '',
    '![fan-out](fanout.svg)',
    '',
    '![fan-out start](fanout-start.svg)',
    '',
    'NATS server (read from `/proc/<pid>` of the dedicated nats-server):',
    '',
    natsTable,
    '',
    'CPU time per rollout (ms, median; read from `/proc` of each process; PostgreSQL not included). When the sum over two cores approaches the rollout time, the machine itself is the bound:',
    '',
    cpuTable,
    '',
    'Raw runs: [fanout.csv](fanout.csv).',
  ].join('\n');
  return {
    markdown,
    files: {
      'fanout.csv': csv(results.flatMap((r) => r.rows.map((row) => ({ ...row, start_s: r.startMs / 1000, processes: r.processes })))),
      'fanout.svg': chart,
      'fanout-start.svg': startChart,
    },
    targets,
  };
}
