import type { Heartbeat, HostUsage } from '@nebula/contracts';
import { getHost, listReports } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { reportRows } from '../src/db/write-reports.ts';
import { drained, heartbeat, publishHeartbeat, startFleet, suffix } from './fleet.ts';

/**
 * Host reports through a real nats-server, PostgreSQL and notifier: one report per usage sample
 * (however many heartbeats carry it), `updated` when the running revisions changed since the host's
 * previous report, the device group from the heartbeat, the host's latest usage kept.
 */
const fleet = await startFleet();
const { db, js, jsm } = fleet;
const fast = (durable: string) => ({ batchSize: 8, flushIntervalMs: 20, retryDelayMs: 50, durables: { results: `${durable}-r`, heartbeats: `${durable}-h` } });

function usage(at: string, cpu: number): HostUsage {
  return {
    gathered_at: at,
    cpu: { cores: 4, used_percent: cpu, load_1m: 1 },
    memory: { used_bytes: 1_000, total_bytes: 8_000 },
    disk: { path: '/var/lib/docker', used_bytes: 10, total_bytes: 100 },
    containers: [{ id: 'c1', name: 'web-1', app: 'web', cpu_percent: 3, memory_bytes: 500, memory_limit_bytes: null }],
  };
}

function withUsage(hb: Heartbeat, u: HostUsage | undefined, revision = 1, group?: string): Heartbeat {
  return {
    ...hb,
    apps: hb.apps.map((a) => ({ ...a, revision })),
    ...(u ? { usage: u } : {}),
    ...(group ? { device_group: group } : {}),
  };
}

test('one report per sample; updated when the revisions changed; the device group; the latest usage kept', async () => {
  const host = `rep-${suffix()}`;
  const n = await fleet.startNotifier(fast(`r-${suffix()}`));
  try {
    const base = heartbeat(host, ['web']);
    const s1 = usage('2026-12-05T10:00:00.000Z', 10);
    const s2 = usage('2026-12-05T10:01:00.000Z', 20);
    const s3 = usage('2026-12-05T10:02:00.000Z', 30);
    await publishHeartbeat(js, withUsage(base, undefined)); // before the first sample
    await publishHeartbeat(js, withUsage(base, s1, 1, 'g1'));
    await publishHeartbeat(js, withUsage(base, s1, 1, 'g1')); // the same sample again
    await publishHeartbeat(js, withUsage(base, s2, 1, 'g1'));
    await publishHeartbeat(js, withUsage(base, s2, 2, 'g1')); // a change, but still sample 2
    await publishHeartbeat(js, withUsage(base, s3, 2, 'g1'));
    await publishHeartbeat(js, withUsage(base, undefined, 2)); // reporting turned off: the last sample stays
    await waitFor('heartbeats written', () => drained(jsm, 'hosts', n.options.durables.heartbeats));
    const page = await listReports(db, { page_size: 100, hostname: host, report_creation_time_filter: 'eq' });
    const data = page.data ?? [];
    assert.equal(
      data.map((r) => [r.host.gathered_at, r.updated, r.device_group]),
      [
        [s1.gathered_at, true, 'g1'], // the host's first report
        [s2.gathered_at, false, 'g1'],
        [s3.gathered_at, true, 'g1'], // revision 1 -> 2 since the previous report
      ],
    );
    assert.equal(data[0]?.apps_containers, s1.containers);
    const h = await getHost(db, host, { offlineAfterMissed: 3 });
    assert.equal(h?.usage, s3);
  } finally {
    await n.stop();
  }
});

test('a host without any sample has no reports and usage null', async () => {
  const host = `none-${suffix()}`;
  const n = await fleet.startNotifier(fast(`n-${suffix()}`));
  try {
    await publishHeartbeat(js, heartbeat(host, ['web']));
    await waitFor('heartbeats written', () => drained(jsm, 'hosts', n.options.durables.heartbeats));
    assert.is((await listReports(db, { page_size: 10, hostname: host, report_creation_time_filter: 'eq' })).data, null);
    assert.is((await getHost(db, host, { offlineAfterMissed: 3 }))?.usage, null);
  } finally {
    await n.stop();
  }
});

test('property: a report per distinct sample, updated exactly when the revisions differ from the report before', () => {
  const beat = fc.record({ sample: fc.integer({ min: 0, max: 4 }), revision: fc.integer({ min: 1, max: 3 }), hasUsage: fc.boolean() });
  fc.assert(
    fc.property(fc.array(beat, { maxLength: 20 }), fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }), (beats, prevRevision) => {
      const list = beats.map((b, i) => ({
        value: withUsage(heartbeat('h', ['web']), b.hasUsage ? usage(new Date(Date.UTC(2026, 0, 1, 0, b.sample)).toISOString(), 1) : undefined, b.revision),
        ns: BigInt(i + 1) * 1_000_000n,
        seq: i + 1,
      }));
      const rows = reportRows(list as never, prevRevision === null ? null : { web: `1:${prevRevision}` });
      const samples = [...new Set(beats.filter((b) => b.hasUsage).map((b) => b.sample))];
      assert.is(rows.length, samples.length);
      let prev = prevRevision === null ? null : `1:${prevRevision}`;
      for (const r of rows) {
        assert.is(r.updated, prev === null || prev !== r.revisions.web);
        prev = r.revisions.web ?? null;
      }
    }),
  );
});

test.after(async () => fleet.close());
test.run();
