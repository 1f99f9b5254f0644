/**
 * Part "ceiling": how many hosts (durable consumers on APPS, one per host and app, as the API makes
 * them at join) one nats-server holds on this machine, and then a three-server cluster with R3
 * streams (R3 consumers, as today; then R1 consumers on the R3 stream); the step where delivery or memory degrades, or something fails, is the ceiling.
 *
 *   start NATS (operator mode) ─▶ APPS stream (R1, or R3 on the cluster) ─▶ server memory, no consumer
 *   per step (planSteps: 1k, 2.5k, 5k ...; consumers are added to the ones of the step before):
 *     create consumers as the API does at join (ensureHostConsumer, API creds, 32 in flight)   create time
 *     readers: a few connections, each keeping one pull request open per consumer it reads, as a
 *              worker does (expires 30 s, idle heartbeat 15 s; pulled again after each message)
 *     quiet (new consumers have had the app's last revision) ─▶ idle window: server CPU at rest
 *     per run: publish one revision ─▶ every consumer read has it (per-consumer delay)  ─▶ every
 *              ack confirmed (ackAck, as the worker)  ─▶ server CPU over the run, above idle
 *     server RSS (/varz mem; the sum over the servers of a cluster) ─▶ judgeStep ─▶ next step or stop
 *
 * The readers stand for hosts with few connections: this measures consumers, not connections (a
 * connection per host is a ceiling of its own: see docs/scale.md). Above CEILING_READ_MAX consumers
 * a sample spread over all of them is read (sampleIndices). Env knobs: CEILING_SINGLE_STEPS,
 * CEILING_CLUSTER_STEPS, CEILING_CLUSTER_R1_STEPS (comma lists, "" skips that topology),
 * CEILING_READ_MAX (default 20,000).
 */
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { consumerName } from '@nebula/bus-auth';
import { streams, subjects } from '@nebula/contracts';
import { DEFAULT_HOST_CONSUMER_TUNING, ensureHostConsumer, ensureStream, hostConsumerConfig } from '@nebula/messaging';
import { type BenchNats, startBenchNats, varz } from './bench-nats.ts';
import {
  DEFAULT_LIMITS,
  type Delivery,
  deliveryOf,
  judgeStep,
  medianOf,
  memoryPerConsumer,
  parseSteps,
  planSteps,
  type StepMeasure,
  sampleIndices,
  TOPOLOGIES,
  type Topology,
  type Verdict,
} from './ceiling-plan.ts';
import { sampleProc } from './proc-stats.ts';
import { type Cell, csv, fixed, mb, mdTable, type PartResult } from './report.ts';
import { sleep, suffix } from './services.ts';

export interface CeilingOptions {
  quick: boolean;
  /** Rollouts measured per step (after one warm-up). */
  runs: number;
  log: (s: string) => void;
}

const NS = 1_000_000;
const PULL_EXPIRES_MS = 30_000; // the worker's fetchExpiresMs
const PULL_HEARTBEAT_MS = 15_000; // what nats.js asks for with it (expires / 2)
const CREATE_IN_FLIGHT = 32;
/** Reader connections: 4 on one server, 2 per server on a cluster. */
const READER_CONNECTIONS = (servers: number) => Math.max(4, servers * 2);
const CALL_TIMEOUT_MS = 10_000;
const enc = new TextEncoder();

interface StepRow {
  topology: Topology;
  measure: StepMeasure;
  verdict: Verdict;
  createdPerSecond: number;
  idleCpuShare: number;
  rssPerServerMb: number[];
  runs: Delivery[];
  ackAllMs: number;
  pullErrors: number;
}

/** Creates consumers [from, to) as the API does at join, CREATE_IN_FLIGHT at a time over one connection per server. */
async function createConsumers(
  jsms: JetStreamManager[],
  app: string,
  from: number,
  to: number,
  replicas: number | undefined,
  log: (s: string) => void,
): Promise<{ ms: number; error: string | null }> {
  let next = from;
  let error: string | null = null;
  let done = 0;
  const t0 = performance.now();
  let lastLog = t0;
  await Promise.all(
    Array.from({ length: CREATE_IN_FLIGHT }, async (_, w) => {
      const jsm = jsms[w % jsms.length]!;
      for (let i = next++; i < to && error === null; i = next++) {
        try {
          if (replicas === undefined) await ensureHostConsumer(jsm, hostIdOf(i), app, DEFAULT_HOST_CONSUMER_TUNING);
          else await jsm.consumers.add(streams.apps.name, { ...hostConsumerConfig(hostIdOf(i), app, DEFAULT_HOST_CONSUMER_TUNING), num_replicas: replicas });
          done++;
          if (performance.now() - lastLog > 10_000) {
            lastLog = performance.now();
            log(`    ${from + done} consumers (${((done / (lastLog - t0)) * 1000).toFixed(0)}/s)`);
          }
        } catch (err) {
          error ??= `consumer ${i + 1}: ${err instanceof Error ? err.message : String(err)}`;
        }
      }
    }),
  );
  return { ms: performance.now() - t0, error };
}

const hostIdOf = (i: number) => `ceil-${String(i + 1).padStart(6, '0')}`;

/**
 * Connections that keep one pull request open on each consumer they read, ack what comes (waiting
 * for the server's confirmation) and pull again: what `consumers` workers do, over a few sockets.
 */
class Readers {
  private conns: NatsConnection[] = [];
  /** Per consumer read: the run of the last message it got. */
  private lastRun: number[] = [];
  private arrivals = new Map<number, number[]>();
  private publishedAt = new Map<number, number>();
  lastArrivalAt = 0;
  acksPending = 0;
  lastAckAt = 0;
  pullErrors = 0;
  private stopped = false;

  private readonly names: string[];
  private readonly log: (s: string) => void;

  constructor(names: string[], log: (s: string) => void) {
    this.names = names;
    this.log = log;
  }

  get count(): number {
    return this.names.length;
  }

  async start(nats: BenchNats, connections: number): Promise<void> {
    for (let c = 0; c < connections; c++) this.conns.push(await connect(nats.connectOptions('admin', c, { name: `bench-reader-${c}`, maxPingOut: 10 })));
    this.lastRun = this.names.map(() => -1);
    for (const [i, name] of this.names.entries()) this.byName.set(name, i);
    for (const [c, nc] of this.conns.entries()) {
      nc.subscribe(`ceil.${c}.*`, { callback: (_e, m) => this.onMessage(c, m) });
      await nc.flush();
    }
    for (let i = 0; i < this.names.length; i++) {
      this.pull(i);
      // Let the socket drain now and then: tens of thousands of requests at once would sit in memory.
      if (i % 2000 === 1999) await Promise.all(this.conns.map((nc) => nc.flush()));
    }
    await Promise.all(this.conns.map((nc) => nc.flush()));
  }

  private byName = new Map<string, number>();

  /** `$JS.ACK.<stream>.<consumer>.<...6>` (v1) or `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<...>` (v2). */
  private indexOfAck(reply: string): number | undefined {
    const t = reply.split('.');
    return this.byName.get((t.length === 9 ? t[3] : t[5]) ?? '');
  }

  private connOf(i: number): number {
    return i % this.conns.length;
  }

  private pull(i: number): void {
    if (this.stopped) return;
    const c = this.connOf(i);
    const nc = this.conns[c]!;
    if (nc.isClosed()) return;
    nc.publish(
      `$JS.API.CONSUMER.MSG.NEXT.${streams.apps.name}.${this.names[i]}`,
      enc.encode(JSON.stringify({ batch: 1, expires: PULL_EXPIRES_MS * NS, idle_heartbeat: PULL_HEARTBEAT_MS * NS })),
      { reply: `ceil.${c}.${i}` },
    );
  }

  private onMessage(_c: number, m: Msg): void {
    const code = m.headers?.code ?? 0;
    if (code === 100) return; // idle heartbeat: the pull request is alive
    // A status comes on the pull's own reply subject (ceil.<conn>.<i>); a message keeps its subject
    // (apps.<app>) and names its consumer in its ack subject.
    const i = m.reply ? this.indexOfAck(m.reply) : Number(m.subject.slice(m.subject.lastIndexOf('.') + 1));
    if (i === undefined || !Number.isInteger(i)) {
      this.pullErrors++;
      return;
    }
    if (code !== 0 || !m.reply) {
      // 408: the request expired without a message (pull again); 409 and others: the server refused it.
      if (code !== 408) {
        this.pullErrors++;
        if (this.pullErrors <= 3) this.log(`    pull ${this.names[i]}: ${code} ${m.headers?.description ?? ''}`);
        setTimeout(() => this.pull(i), 1000).unref();
        return;
      }
      this.pull(i);
      return;
    }
    const now = performance.now();
    this.lastArrivalAt = now;
    const run = (JSON.parse(new TextDecoder().decode(m.data)) as { run: number }).run;
    const at = this.publishedAt.get(run);
    if (at !== undefined && this.lastRun[i]! < run) this.arrivals.get(run)?.push(now - at);
    this.lastRun[i] = Math.max(this.lastRun[i]!, run);
    this.acksPending++;
    const nc = this.conns[this.connOf(i)]!;
    nc.request(m.reply, enc.encode('+ACK'), { timeout: CALL_TIMEOUT_MS })
      .catch(() => {
        this.pullErrors++;
      })
      .finally(() => {
        this.acksPending--;
        this.lastAckAt = performance.now();
        this.pull(i);
      });
  }

  /** Marks the start of run `run` (just before its publish). */
  begin(run: number): void {
    this.arrivals.set(run, []);
    this.publishedAt.set(run, performance.now());
  }

  arrived(run: number): number[] {
    return this.arrivals.get(run) ?? [];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.conns.map((nc) => nc.close().catch(() => undefined)));
  }
}

const serversCpuMs = (nats: BenchNats) => nats.servers.reduce((s, x) => s + sampleProc(x.pid).cpuMs, 0);
const serversDown = (nats: BenchNats) => nats.servers.map((s) => s.down()).find((d) => d !== null) ?? null;
const serversRss = async (nats: BenchNats) => Promise.all(nats.servers.map(async (s) => (await varz(s)).mem));

async function waitUntil(cond: () => boolean, timeoutMs: number, everyMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

async function runTopology(topology: Topology, steps: number[], opts: CeilingOptions): Promise<StepRow[]> {
  const size = topology === 'single' ? 1 : 3;
  const replicas = size;
  const consumerReplicas = topology === 'cluster-r1' ? 1 : undefined; // undefined: the stream's, as today
  const readMax = Number(process.env.CEILING_READ_MAX ?? 20_000);
  opts.log(`ceiling: ${label(topology)}, steps ${steps.join(', ')}`);
  const nats = await startBenchNats(size);
  const apiConns: NatsConnection[] = [];
  const rows: StepRow[] = [];
  const app = `ceil-${suffix()}`;
  let publisher: NatsConnection | null = null;
  try {
    for (let s = 0; s < size; s++) apiConns.push(await connect(nats.connectOptions('api', s, { name: `bench-api-${s}` })));
    const jsms = await Promise.all(apiConns.map((nc) => jetstreamManager(nc, { timeout: CALL_TIMEOUT_MS })));
    await ensureStream(jsms[0]!, 'apps', { replicas });
    publisher = await connect(nats.connectOptions('admin', 0, { name: 'bench-publisher' }));
    const js = jetstream(publisher, { timeout: CALL_TIMEOUT_MS });
    const body = (run: number) => enc.encode(JSON.stringify({ v: 1, app, revision: run + 1, run, pad: 'x'.repeat(900) }));
    // The app has a revision before any host joins (new consumers start from the last one).
    let run = 0;
    await js.publish(subjects.app(app), body(run));
    await sleep(2000);
    const baseRss = (await serversRss(nats)).reduce((a, b) => a + b, 0);
    opts.log(`  base: server memory ${fixed(mb(baseRss), 0)} MB`);
    let have = 0;
    const held: StepMeasure[] = [];
    for (const n of steps) {
      opts.log(`  step ${n} consumers: creating ${n - have}`);
      const created = await createConsumers(jsms, app, have, n, consumerReplicas, opts.log);
      opts.log(
        `  step ${n}: ${created.error ? `failed after ${(created.ms / 1000).toFixed(1)} s: ${created.error}` : `created in ${(created.ms / 1000).toFixed(1)} s`}`,
      );
      const measure: StepMeasure = {
        consumers: n,
        createError: created.error,
        createMs: created.ms,
        baseRssBytes: baseRss,
        rssBytes: Number.NaN,
        delivery: { read: 0, delivered: 0, p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN },
        cpuMsPerRollout: Number.NaN,
        serverDown: serversDown(nats),
        runError: null,
      };
      const row: StepRow = {
        topology,
        measure,
        verdict: { kind: 'held' },
        createdPerSecond: ((n - have) / created.ms) * 1000,
        idleCpuShare: Number.NaN,
        rssPerServerMb: [],
        runs: [],
        ackAllMs: Number.NaN,
        pullErrors: 0,
      };
      rows.push(row);
      if (created.error !== null || measure.serverDown !== null) {
        row.verdict = judgeStep(held, measure);
        break;
      }
      have = n;

      const indices = sampleIndices(n, readMax);
      const readers = new Readers(
        indices.map((i) => consumerName(hostIdOf(i), app)),
        opts.log,
      );
      try {
        await readers.start(nats, READER_CONNECTIONS(size));
        // Quiet: the new consumers have had (and acked) the app's last revision.
        const quietFor = 2000;
        await waitUntil(
          () => readers.acksPending === 0 && performance.now() - Math.max(readers.lastArrivalAt, readers.lastAckAt) > quietFor,
          60_000 + n * 5,
          100,
        );
        const c0 = serversCpuMs(nats);
        const i0 = performance.now();
        await sleep(opts.quick ? 3000 : 5000);
        const idleShare = (serversCpuMs(nats) - c0) / (performance.now() - i0);
        row.idleCpuShare = idleShare;

        const deliveries: Delivery[] = [];
        const cpus: number[] = [];
        const ackAll: number[] = [];
        const timeoutMs = 30_000 + n * 2;
        for (let r = 0; r <= opts.runs; r++) {
          run++;
          readers.begin(run);
          const cpu0 = serversCpuMs(nats);
          const t0 = performance.now();
          try {
            await js.publish(subjects.app(app), body(run));
          } catch (err) {
            // The server did not confirm the revision in time: as far as hosts go, the step failed.
            measure.runError = `publishing the revision (run ${r}): ${err instanceof Error ? err.message : String(err)} after ${CALL_TIMEOUT_MS} ms`;
            break;
          }
          await waitUntil(() => readers.arrived(run).length >= readers.count, timeoutMs);
          await waitUntil(() => readers.acksPending === 0, timeoutMs);
          const t1 = performance.now();
          const cpu = serversCpuMs(nats) - cpu0 - idleShare * (t1 - t0);
          const d = deliveryOf(readers.count, readers.arrived(run));
          opts.log(
            `    run ${r}${r === 0 ? ' (warm-up)' : ''}: ${d.delivered}/${d.read} got it, p50 ${fixed(d.p50Ms, 0)} ms, p99 ${fixed(d.p99Ms, 0)} ms, all ${fixed(d.maxMs, 0)} ms, acked ${fixed(t1 - t0, 0)} ms, server CPU ${fixed(cpu, 0)} ms`,
          );
          if (r > 0) {
            deliveries.push(d);
            cpus.push(cpu);
            ackAll.push(t1 - t0);
          }
          if (d.delivered < d.read) break; // lost: no use in more runs
          await sleep(1000);
        }
        const rss = await serversRss(nats).catch(() => nats.servers.map(() => Number.NaN));
        row.rssPerServerMb = rss.map(mb);
        row.runs = deliveries;
        row.ackAllMs = medianOf(ackAll);
        row.pullErrors = readers.pullErrors;
        measure.rssBytes = rss.reduce((a, b) => a + b, 0);
        measure.cpuMsPerRollout = medianOf(cpus);
        const lost = deliveries.find((d) => d.delivered < d.read);
        measure.delivery = lost ?? {
          read: readers.count,
          delivered: readers.count,
          p50Ms: medianOf(deliveries.map((d) => d.p50Ms)),
          p99Ms: medianOf(deliveries.map((d) => d.p99Ms)),
          maxMs: medianOf(deliveries.map((d) => d.maxMs)),
        };
      } finally {
        await readers.stop();
      }
      measure.serverDown = serversDown(nats);
      row.verdict = judgeStep(held, measure);
      opts.log(
        `  step ${n}: ${row.verdict.kind}${row.verdict.kind === 'held' ? '' : ` (${row.verdict.reason})`}; memory ${fixed(mb(measure.rssBytes), 0)} MB, ${fixed(mb(memoryPerConsumer(measure) * 1000), 1)} MB per 1,000`,
      );
      if (row.verdict.kind !== 'held') break;
      held.push(measure);
    }
  } finally {
    await publisher?.close().catch(() => undefined);
    for (const nc of apiConns) await nc.close().catch(() => undefined);
    await nats.stop();
  }
  return rows;
}

const STEPS_ENV: Record<Topology, string> = { single: 'CEILING_SINGLE_STEPS', cluster: 'CEILING_CLUSTER_STEPS', 'cluster-r1': 'CEILING_CLUSTER_R1_STEPS' };

function label(t: Topology): string {
  return t === 'single' ? '1 server, R1' : t === 'cluster' ? '3 servers, R3' : '3 servers, R3 stream, R1 consumers';
}

function stepsFor(topology: Topology, quick: boolean): number[] {
  const env = process.env[STEPS_ENV[topology]];
  return env === undefined ? planSteps(topology, quick) : parseSteps(env);
}

const verdictText = (v: Verdict) => (v.kind === 'held' ? 'held' : `**${v.kind}**: ${v.reason}`);

export async function runCeiling(opts: CeilingOptions): Promise<PartResult> {
  const rows: StepRow[] = [];
  for (const topology of TOPOLOGIES) {
    const steps = stepsFor(topology, opts.quick);
    if (steps.length > 0) rows.push(...(await runTopology(topology, steps, opts)));
  }
  const table: Cell[][] = rows.map((r) => {
    const m = r.measure;
    const d = m.delivery;
    return [
      label(r.topology),
      m.consumers.toLocaleString('en-US'),
      verdictText(r.verdict),
      `${fixed(m.createMs / 1000, 1)} s (${fixed(r.createdPerSecond, 0)}/s)`,
      Number.isFinite(m.rssBytes)
        ? `${fixed(mb(m.rssBytes), 0)}${r.rssPerServerMb.length > 1 ? ` (${r.rssPerServerMb.map((x) => fixed(x, 0)).join(' + ')})` : ''}`
        : 'n/a',
      fixed(mb(memoryPerConsumer(m) * 1000), 1),
      d.read === 0 ? 'n/a' : `${d.read === m.consumers ? 'all' : `${d.read.toLocaleString('en-US')} sampled`}`,
      `${fixed(d.p50Ms, 0)} / ${fixed(d.p99Ms, 0)} / ${fixed(d.maxMs, 0)}`,
      fixed(r.ackAllMs, 0),
      fixed(m.cpuMsPerRollout, 0),
      Number.isFinite(m.cpuMsPerRollout) ? fixed((m.cpuMsPerRollout / m.consumers) * 1000, 0) : 'n/a',
      Number.isFinite(r.idleCpuShare) ? `${fixed(r.idleCpuShare * 100, 0)} %` : 'n/a',
      r.pullErrors,
    ];
  });
  const ceilingOf = (t: Topology) => {
    const rs = rows.filter((r) => r.topology === t);
    if (rs.length === 0) return null;
    const last = rs.filter((r) => r.verdict.kind === 'held').at(-1);
    const stop = rs.find((r) => r.verdict.kind !== 'held');
    return `${label(t)}: ${last ? `held ${last.measure.consumers.toLocaleString('en-US')} consumers` : 'held no step'}${stop ? `, ${stop.verdict.kind} at ${stop.measure.consumers.toLocaleString('en-US')} (${stop.verdict.kind === 'held' ? '' : stop.verdict.reason})` : ' (every step tried held: the ceiling is higher)'}`;
  };
  const L = DEFAULT_LIMITS;
  const markdown = [
    `Durable consumers on APPS, one per simulated host, created as the API creates a host's consumer at join (\`ensureHostConsumer\`: info, then create; API credentials, ${CREATE_IN_FLIGHT} in flight), added in steps to the consumers of the step before, against nats-server in operator mode: one server with an R1 stream, then three servers joined by routes with an R3 stream (its consumers R3 too, as the code makes them today), then the same cluster with R1 host consumers on the R3 stream (a cheaper variant: a consumer lost with its server would be made again when its host asks). At each step a few reader connections (4 on one server, 2 per server on the cluster) keep one pull request open per consumer, as each worker does (expires ${PULL_EXPIRES_MS / 1000} s, idle heartbeat ${PULL_HEARTBEAT_MS / 1000} s, pulled again after each message), read all consumers (or an even sample above ${Number(process.env.CEILING_READ_MAX ?? 20_000).toLocaleString('en-US')}); then one ~1 KB revision is published ${opts.runs} times after a warm-up, and the figures are medians over those runs. Delivery: per consumer, from the publish to the message's arrival; "all acked": until the server confirmed every consumer's ack (ackAck, as the worker). Server CPU per rollout: nats-server's CPU time (all servers) over that window, minus its idle rate with the readers connected (measured just before). Memory: /varz \`mem\` (RSS), summed over the servers. A step is **failed** when a consumer cannot be created, a server goes down, or a consumer read never gets the message; **degraded** when the p99 exceeds ${L.p99Ms} ms, grows more than ${L.p99GrowthPerConsumer}x faster than the number of consumers (against the best earlier step, above ${L.p99FloorMs} ms), or memory per consumer exceeds ${L.memoryGrowthPerConsumer}x the first step's; the run stops at the first such step. The readers use a few connections: this measures consumers, not one connection per host.`,
    '',
    ...TOPOLOGIES.map(ceilingOf)
      .filter((x) => x !== null)
      .map((x) => `- ${x}`),
    '',
    mdTable(
      [
        'NATS',
        'consumers',
        'step',
        'created in (rate)',
        'server RSS (MB)',
        'MB per 1,000 hosts',
        'read',
        'delivery p50 / p99 / all (ms)',
        'all acked (ms)',
        'server CPU per rollout (ms)',
        'CPU ms per 1,000 hosts',
        'server CPU at rest',
        'pull errors',
      ],
      table,
    ),
    '',
    'Raw steps: [ceiling.csv](ceiling.csv).',
  ].join('\n');
  const csvRows = rows.map((r) => ({
    topology: r.topology,
    consumers: r.measure.consumers,
    verdict: r.verdict.kind,
    reason: r.verdict.kind === 'held' ? '' : r.verdict.reason,
    create_ms: r.measure.createMs,
    created_per_s: r.createdPerSecond,
    rss_mb: mb(r.measure.rssBytes),
    base_rss_mb: mb(r.measure.baseRssBytes),
    mb_per_1000: mb(memoryPerConsumer(r.measure) * 1000),
    read: r.measure.delivery.read,
    delivered: r.measure.delivery.delivered,
    p50_ms: r.measure.delivery.p50Ms,
    p99_ms: r.measure.delivery.p99Ms,
    all_ms: r.measure.delivery.maxMs,
    all_acked_ms: r.ackAllMs,
    cpu_ms_per_rollout: r.measure.cpuMsPerRollout,
    idle_cpu_share: r.idleCpuShare,
    pull_errors: r.pullErrors,
  }));
  return { markdown, files: { 'ceiling.csv': csv(csvRows) }, targets: [] };
}
