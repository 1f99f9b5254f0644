/**
 * Part "notifier": N simulated hosts reporting a rollout, each result and heartbeat signed with its
 * host's own key, through the real notifier process (which checks every signature against
 * host_credentials) into PostgreSQL. No API: the hosts' rows are written as the API writes them at
 * join (sim-hosts.ts), the rollouts as it writes them.
 *
 *   register N keys ─▶ N signed heartbeats ─▶ N hosts online
 *   per run: insert rollout ─▶ publish N signed results + forgeries (1 %, ≥ 1 each: signed by another
 *            host, and unsigned; newer than the genuine ones) ─▶ all N rows written and every
 *            forgery counted as rejected ─▶ check no forgery was written
 *            ─▶ publish N signed heartbeats ─▶ every host's last_seen is the new one
 *
 * The simulated hosts share one connection (the server's admin user) so that the figures are the
 * notifier's, not those of N TLS-less handshakes; what they publish is signed per host all the same.
 */
import { randomUUID } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { type Heartbeat, type Result, subjects } from '@nebula/contracts';
import { countHosts, createDb } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import { sampleProc } from './proc-stats.ts';
import { csv, fixed, mdTable, type PartResult } from './report.ts';
import { startBenchStack, suffix } from './services.ts';
import { makeSimHost, publishAsHost, registerSimHosts, type SimHost } from './sim-hosts.ts';
import { fmtMs, summarize } from './stats.ts';

export interface NotifierLoadOptions {
  sizes: number[];
  runs: number;
  log: (s: string) => void;
}

function heartbeatOf(host: string, app: string): Heartbeat {
  return {
    v: 1,
    host,
    apps: [{ app, incarnation: 1, revision: 1, containers: [{ id: `${host}-c`, name: `${app}-0`, state: 'running' }] }],
    cores: 2,
    memory_mb: 2048,
    worker_version: 'bench',
    interval_seconds: 30,
    at: new Date().toISOString(),
  };
}

function resultOf(rolloutId: string, app: string, revision: number, host: string, status: Result['status']): Result {
  return {
    v: 1,
    app,
    host,
    incarnation: 1,
    revision,
    rollout_id: rolloutId,
    action: 'update',
    status,
    error: status === 'failed' ? 'forged' : null,
    image_digest: `sha256:${'a'.repeat(64)}`,
    containers: [{ id: `${host}-c`, name: `${app}-0`, state: 'running' }],
    durations_ms: { pull: 1, apply: 1 },
    at: new Date().toISOString(),
  };
}

/** Publishes `count` messages `make(i)` with at most `inFlight` unanswered at a time. */
async function publishAll(count: number, inFlight: number, make: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      for (let i = next++; i < count; i = next++) await make(i);
    }),
  );
}

async function rejectedTotal(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('nebula_notifier_messages_rejected_total{') && line.includes('stream="results"')) sum += Number(line.split(' ').at(-1));
  return sum;
}

export async function runNotifierLoad(opts: NotifierLoadOptions): Promise<PartResult> {
  const rows: Array<Record<string, string | number>> = [];
  const table: Array<Array<string | number>> = [];
  for (const n of opts.sizes) {
    opts.log(`notifier: N=${n}`);
    const stack = await startBenchStack({ api: false });
    const nc = await connect({ ...stack.nats.connectOptions('admin'), name: 'bench-sim-hosts' });
    const db = createDb(stack.databaseUrl, 2);
    try {
      const app = `nt-${suffix()}`;
      const hosts: SimHost[] = Array.from({ length: n }, (_, i) => makeSimHost(`nsim-${String(i + 1).padStart(5, '0')}`));
      await registerSimHosts(stack.databaseUrl, hosts, [app]);
      const js = jetstream(nc);
      await publishAll(n, 200, (i) => publishAsHost(js, subjects.heartbeat(hosts[i]!.hostId), heartbeatOf(hosts[i]!.hostId, app), hosts[i]!));
      await waitFor(`${n} hosts online`, async () => (await countHosts(db, { offlineAfterMissed: 3 })).online >= n, 120_000, 100);

      const forged = Math.max(1, Math.floor(n / 100));
      const times: number[] = [];
      const cpuPerK: number[] = [];
      const hbTimes: number[] = [];
      const hbCpuPerK: number[] = [];
      for (let run = 0; run <= opts.runs; run++) {
        const id = randomUUID();
        const revision = run + 2;
        await db
          .insertInto('rollouts')
          .values({ id, app, incarnation: '1', revision, action: 'update', expected_hosts: hosts.map((h) => h.hostId), published_at: new Date() })
          .execute();
        const rejected0 = await rejectedTotal(stack.notifier.port);
        const cpu0 = sampleProc(stack.notifier.pid).cpuMs;
        const t0 = performance.now();
        await publishAll(n, 200, (i) =>
          publishAsHost(js, subjects.result(app, hosts[i]!.hostId), resultOf(id, app, revision, hosts[i]!.hostId, 'applied'), hosts[i]!),
        );
        // Forgeries, after the genuine results (so any that got through would replace them).
        await publishAll(forged, 50, async (i) => {
          const victim = hosts[i % n]!;
          const other = hosts[(i + 1) % n]!;
          const body = resultOf(id, app, revision, victim.hostId, 'failed');
          await publishAsHost(js, subjects.result(app, victim.hostId), body, n > 1 ? other : makeSimHost('stranger'));
          await publishAsHost(js, subjects.result(app, victim.hostId), body, null);
        });
        const count = async () =>
          Number(
            (
              await db
                .selectFrom('rollout_hosts')
                .select((eb) => eb.fn.countAll<string>().as('n'))
                .where('rollout_id', '=', id)
                .executeTakeFirstOrThrow()
            ).n,
          );
        await waitFor(
          `${n} results written, ${2 * forged} forgeries dropped`,
          async () => (await count()) >= n && (await rejectedTotal(stack.notifier.port)) - rejected0 >= 2 * forged,
          300_000,
          20,
        );
        const ms = performance.now() - t0;
        const cpu = sampleProc(stack.notifier.pid).cpuMs - cpu0;
        const failedRows = await db.selectFrom('rollout_hosts').select('host').where('rollout_id', '=', id).where('status', '=', 'failed').execute();
        if (failedRows.length > 0) throw new Error(`${failedRows.length} forged results were written`);
        const messages = n + 2 * forged;
        // Then one heartbeat round: every host's row has the new last_seen (JetStream's time, this machine's clock).
        const since = new Date(Date.now() - 1);
        const hbCpu0 = sampleProc(stack.notifier.pid).cpuMs;
        const h0 = performance.now();
        await publishAll(n, 200, (i) => publishAsHost(js, subjects.heartbeat(hosts[i]!.hostId), heartbeatOf(hosts[i]!.hostId, app), hosts[i]!));
        const seen = async () =>
          Number(
            (
              await db
                .selectFrom('hosts')
                .select((eb) => eb.fn.countAll<string>().as('n'))
                .where('last_seen', '>=', since)
                .executeTakeFirstOrThrow()
            ).n,
          );
        await waitFor(`${n} heartbeats written`, async () => (await seen()) >= n, 300_000, 20);
        const hbMs = performance.now() - h0;
        const hbCpu = sampleProc(stack.notifier.pid).cpuMs - hbCpu0;
        opts.log(
          `  N=${n} run ${run}${run === 0 ? ' (warm-up)' : ''}: ${messages} messages in ${ms.toFixed(0)} ms, notifier CPU ${cpu.toFixed(0)} ms; ${n} heartbeats in ${hbMs.toFixed(0)} ms, notifier CPU ${hbCpu.toFixed(0)} ms`,
        );
        if (run === 0) continue;
        times.push(ms);
        cpuPerK.push((cpu / messages) * 1000);
        hbTimes.push(hbMs);
        hbCpuPerK.push((hbCpu / n) * 1000);
        rows.push({
          hosts: n,
          run,
          messages,
          forged: 2 * forged,
          written_ms: ms,
          notifier_cpu_ms: cpu,
          messages_per_s: (messages / ms) * 1000,
          heartbeats_ms: hbMs,
          heartbeats_notifier_cpu_ms: hbCpu,
          heartbeats_per_s: (n / hbMs) * 1000,
        });
      }
      const t = summarize(times);
      const c = summarize(cpuPerK);
      const h = summarize(hbTimes);
      table.push([
        n,
        fmtMs(t),
        fixed(((n + 2 * forged) / t.median) * 1000, 0),
        fixed(c.median, 0),
        `${2 * forged} per run, all dropped and counted`,
        fmtMs(h),
        fixed((n / h.median) * 1000, 0),
        fixed(summarize(hbCpuPerK).median, 0),
      ]);
    } finally {
      await db.destroy().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await stack.stop();
    }
  }
  const markdown = [
    `Simulated hosts with keys of their own (registered in host_credentials as the API registers them at join) publish one signed result each per run, plus 1 % forgeries (signed by another host, and unsigned), through one shared connection; the real notifier process checks every signature and writes the results to a throwaway PostgreSQL database. Time from the first publish until every genuine result is written and every forgery counted as rejected; then one signed heartbeat per host, until every host's row has it (\`last_seen\`); the notifier batches both (\`NOTIFIER_FLUSH_INTERVAL_MS\`). Median of ${opts.runs} runs after a warm-up (min-max).`,
    '',
    mdTable(
      [
        'hosts',
        'results: all written',
        'results/s',
        'notifier CPU per 1,000 results (ms)',
        'forgeries',
        'heartbeats: all written',
        'heartbeats/s',
        'notifier CPU per 1,000 heartbeats (ms)',
      ],
      table,
    ),
    '',
    'Raw runs: [notifier.csv](notifier.csv).',
  ].join('\n');
  return { markdown, files: { 'notifier.csv': csv(rows) }, targets: [] };
}
