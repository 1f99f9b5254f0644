import { MESSAGE_VERSION, subjects } from '@nebula/contracts';
import { getHost } from '@nebula/db';
import { waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRollout, drained, heartbeat, publishHeartbeat, publishResult, publishSigned, result, startFleet, suffix } from './fleet.ts';

/**
 * Results and heartbeats of a newer schema version than the notifier's (a worker upgraded before the
 * control plane): signed by their host, so past the signature check, but never written. Counted as
 * `newer_version`, apart from malformed ones, and terminated; the notifier goes on. Real nats-server
 * and PostgreSQL.
 */
const fleet = await startFleet();
const { db, js, jsm } = fleet;
const NEWER = MESSAGE_VERSION + 1;
const fast = (durable: string) => ({ batchSize: 8, flushIntervalMs: 20, retryDelayMs: 50, durables: { results: `${durable}-r`, heartbeats: `${durable}-h` } });

test('a result and a heartbeat of a newer version are counted and dropped, a malformed one apart; the v1 ones after them are written', async () => {
  const app = `ver-${suffix()}`;
  const host = `${app}-1`;
  const r = await createRollout(db, app, [host]);
  const durable = `v-${suffix()}`;
  const n = await fleet.startNotifier(fast(durable));
  try {
    // The newer worker renamed fields: nothing of it would parse as version 1.
    await publishSigned(js, subjects.result(app, host), JSON.stringify({ v: NEWER, app, host, rollout: r.id, outcome: { status: 'applied' } }));
    await publishSigned(js, subjects.heartbeat(host), JSON.stringify({ ...heartbeat(host, [app]), v: NEWER, cores: '4 cores' }));
    // And one that is just wrong (version 1, a field missing): "invalid", not "newer_version".
    const { error: _, ...noError } = result(r, host, 'failed');
    await publishSigned(js, subjects.result(app, host), JSON.stringify(noError));
    await waitFor('all handled', async () =>
      (await drained(jsm, 'results', n.options.durables.results)) && (await drained(jsm, 'hosts', n.options.durables.heartbeats)) ? true : undefined,
    );
    assert.equal(n.stats.results.rejectedBy, { newer_version: 1, invalid: 1 });
    assert.equal(n.stats.heartbeats.rejectedBy, { newer_version: 1 });
    assert.is(n.stats.results.written, 0);
    assert.is(n.stats.heartbeats.written, 0);
    assert.is(await getHost(db, host, { offlineAfterMissed: 3 }), null, 'the host is not known from a heartbeat it could not read');
    const text = await n.registry.getSingleMetricAsString('nebula_notifier_messages_rejected_total');
    assert.match(text, /nebula_notifier_messages_rejected_total\{stream="results",reason="newer_version"\} 1/);
    assert.match(text, /nebula_notifier_messages_rejected_total\{stream="heartbeats",reason="newer_version"\} 1/);

    assert.is(n.state, 'running');
    await publishResult(js, result(r, host, 'applied'));
    await publishHeartbeat(js, heartbeat(host, [app]));
    await waitFor('the v1 result written', async () => {
      const row = await db.selectFrom('rollout_hosts').selectAll().where('rollout_id', '=', r.id).where('host', '=', host).executeTakeFirst();
      return row?.status === 'applied' ? row : undefined;
    });
    await waitFor('the v1 heartbeat written', async () => (await getHost(db, host, { offlineAfterMissed: 3 })) ?? undefined);
  } finally {
    await n.stop();
  }
});

test.after(async () => {
  await fleet.close();
});

test.run();
