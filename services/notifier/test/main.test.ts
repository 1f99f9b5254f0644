import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streams, subjects } from '@nebula/contracts';
import { freePort, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRollout, heartbeat, hostIds, publishHeartbeat, publishResult, result, startFleet, suffix } from './fleet.ts';

// The service as it runs: main.ts in its own process, configured by environment variables.
const MAIN = join(import.meta.dirname, '..', 'src', 'main.ts');
const fleet = await startFleet();
// The notifier's own identity, as an installation hands it over: a creds file readable by it alone.
const dir = mkdtempSync(join(tmpdir(), 'notifier-main-'));
const CREDS = join(dir, 'notifier.creds');
writeFileSync(CREDS, fleet.server.creds.notifier, { mode: 0o600 });

function run(env: Record<string, string | undefined>): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [MAIN], {
    env: { ...process.env, DATABASE_URL: fleet.dbUrl, NATS_URL: fleet.server.url, NATS_CREDS: CREDS, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, output: () => output, exited };
}

test('a wrong variable stops it with exit code 2 and names the variable', async () => {
  const { exited, output } = run({ NOTIFIER_BATCH_SIZE: '0', METRICS_PORT: String(await freePort()) });
  assert.is(await exited, 2);
  assert.match(output(), /NOTIFIER_BATCH_SIZE/);
  const db = run({ DB_QUERY_TIMEOUT_MS: 'later', METRICS_PORT: String(await freePort()) });
  assert.is(await db.exited, 2);
  assert.match(db.output(), /DB_QUERY_TIMEOUT_MS/);
});

test('no NATS identity, no start: NATS_CREDS missing or unreadable stops it with exit code 2, naming the variable', async () => {
  const missing = run({ NATS_CREDS: undefined, METRICS_PORT: String(await freePort()) });
  assert.is(await missing.exited, 2);
  assert.match(missing.output(), /NATS_CREDS: is required/);
  const unreadable = run({ NATS_CREDS: join(dir, 'nope.creds'), METRICS_PORT: String(await freePort()) });
  assert.is(await unreadable.exited, 2);
  assert.match(unreadable.output(), /NATS_CREDS: the creds file .*nope.creds cannot be read \(ENOENT\)/);
  const ca = run({ NATS_TLS_CA: join(dir, 'nope.pem'), METRICS_PORT: String(await freePort()) });
  assert.is(await ca.exited, 2);
  assert.match(ca.output(), /NATS_TLS_CA/);
  // Another identity's creds (a host's): the server lets it in, but it may not manage RESULTS: no start.
  const hostCreds = join(dir, 'host.creds');
  writeFileSync(hostCreds, (await fleet.server.hostCreds('h-main', ['web'])).creds, { mode: 0o600 });
  const wrong = run({ NATS_CREDS: hostCreds, METRICS_PORT: String(await freePort()) });
  assert.is(await wrong.exited, 1, wrong.output());
  assert.not.match(wrong.output(), /SU[A-Z2-7]{40}|BEGIN NATS/, 'no key in the log');
});

test('serves /health and /metrics; on SIGTERM it writes and acks what it holds, then exits 0', async () => {
  const port = await freePort();
  // Batches that never fill and a flush interval longer than the test: only the stop can write them.
  const svc = run({ METRICS_PORT: String(port), NOTIFIER_BATCH_SIZE: '1000', NOTIFIER_FLUSH_INTERVAL_MS: '60000' });
  try {
    const health = await waitFor('healthy', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      return res.status === 200 ? ((await res.json()) as { checks: Record<string, boolean> }) : undefined;
    });
    assert.equal(health.checks, { postgres: true, nats: true, consuming: true });

    const app = `proc-${suffix()}`;
    const hosts = hostIds(5, app);
    for (const h of hosts) await publishHeartbeat(fleet.js, heartbeat(h, [app]));
    const r = await createRollout(fleet.db, app, hosts);
    for (const h of hosts) await publishResult(fleet.js, result(r, h));
    await waitFor('all results delivered to the notifier, none acked yet', async () => {
      const info = await fleet.jsm.consumers.info(streams.results.name, 'notifier-results');
      return info.num_pending === 0 && info.num_ack_pending === 5;
    });
    const before = await fleet.db.selectFrom('rollout_hosts').select('host').where('rollout_id', '=', r.id).execute();
    assert.is(before.length, 0, 'held in a batch that is not due');

    svc.proc.kill('SIGTERM');
    assert.is(await svc.exited, 0, svc.output());
    const after = await fleet.db.selectFrom('rollout_hosts').select('host').where('rollout_id', '=', r.id).execute();
    assert.is(after.length, 5);
    const info = await fleet.jsm.consumers.info(streams.results.name, 'notifier-results');
    assert.is(info.num_ack_pending, 0, 'acked before exiting');
    const hostsInfo = await fleet.jsm.consumers.info(streams.hosts.name, 'notifier-hosts');
    assert.is(hostsInfo.num_ack_pending + hostsInfo.num_pending, 0);
  } finally {
    if (svc.proc.exitCode === null) svc.proc.kill('SIGKILL');
  }
});

test('its metrics count what it wrote', async () => {
  const port = await freePort();
  const svc = run({ METRICS_PORT: String(port), NOTIFIER_FLUSH_INTERVAL_MS: '10' });
  try {
    await waitFor('healthy', async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200);
    const app = `m-${suffix()}`;
    const [h] = hostIds(1, app) as [string];
    await publishHeartbeat(fleet.js, heartbeat(h, [app]));
    const r = await createRollout(fleet.db, app, [h]);
    await publishResult(fleet.js, result(r, h));
    await fleet.js.publish(subjects.result(app, h), JSON.stringify(result(r, h, 'failed'))); // unsigned: dropped
    const wanted = [
      /nebula_notifier_messages_rejected_total\{stream="results",reason="unsigned",service="notifier"\} 1/,
      /notifier_messages_written_total\{stream="results",service="notifier"\} [1-9]/,
      /notifier_messages_written_total\{stream="heartbeats",service="notifier"\} [1-9]/,
      /notifier_batch_size_count\{service="notifier",stream="results"\} [1-9]/,
      /notifier_hosts\{status="online",service="notifier"\} [1-9]/,
    ];
    let text = '';
    await waitFor('counted', async () => {
      text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return wanted.every((re) => re.test(text));
    }).catch((err) => {
      throw new Error(`metrics missing: ${wanted.filter((re) => !re.test(text)).join(', ')}`, { cause: err });
    });
    svc.proc.kill('SIGTERM');
    assert.is(await svc.exited, 0);
  } finally {
    if (svc.proc.exitCode === null) svc.proc.kill('SIGKILL');
  }
});

test.after(async () => {
  await fleet.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
