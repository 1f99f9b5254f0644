import { AckPolicy, type ConsumerConfig, DeliverPolicy, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '@nebula/test-kit';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { consumerDelta, ensureConsumer } from '../src/index.ts';

const TUNED = ['ack_wait', 'max_ack_pending', 'inactive_threshold', 'filter_subject'] as const;
const configArb = fc.record(
  {
    ack_wait: fc.constantFrom(1e9, 30e9),
    max_ack_pending: fc.constantFrom(1, 1000),
    inactive_threshold: fc.constantFrom(60e9, 3600e9),
    filter_subject: fc.constantFrom('s.a', 's.b'),
    deliver_policy: fc.constantFrom(DeliverPolicy.All, DeliverPolicy.New),
  },
  { requiredKeys: [] },
);

test('consumerDelta: only tuned fields that differ, with the wanted values; applied, the config has them all', () => {
  fc.assert(
    fc.property(configArb, configArb, fc.subarray([...TUNED]), (current, wanted, tuned) => {
      const delta = consumerDelta(current as Partial<ConsumerConfig>, wanted as Partial<ConsumerConfig>, tuned);
      for (const [k, v] of Object.entries(delta)) {
        assert.ok((tuned as string[]).includes(k), `${k} is not tuned`);
        assert.is(v, wanted[k as keyof typeof wanted]);
        assert.is.not(v, current[k as keyof typeof current]);
      }
      const after: Record<string, unknown> = { ...current, ...delta };
      for (const k of tuned) if (wanted[k] !== undefined) assert.is(after[k], wanted[k]);
      assert.is(delta.deliver_policy, undefined, 'never a field outside tuned');
    }),
  );
});

const server = await startNatsServer();
const nc = await connect(server.connectOptions('admin'));
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: 'C', subjects: ['c.>'] });
const base = (durable: string) => ({
  durable_name: durable,
  filter_subject: 'c.a',
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
  ack_wait: 30_000_000_000,
  max_ack_pending: 1000,
});

test('on this server (NATS 2.10+) consumers.add is a create: other settings for an existing durable are refused', async () => {
  await jsm.consumers.add('C', base('plain'));
  await jsm.consumers.add('C', base('plain')); // the same settings: accepted
  try {
    await jsm.consumers.add('C', { ...base('plain'), ack_wait: 5_000_000_000 });
    assert.unreachable('add with another ack_wait');
  } catch (err) {
    assert.instance(err, JetStreamApiError);
    assert.is((err as JetStreamApiError).code, 10148, String(err)); // consumer already exists
  }
});

test('ensureConsumer creates a missing durable, leaves a current one alone, and updates changed tuning in place', async () => {
  const first = await ensureConsumer(jsm, 'C', base('d1'), TUNED);
  assert.is(first.outcome, 'created');
  assert.is((await ensureConsumer(jsm, 'C', base('d1'), TUNED)).outcome, 'unchanged');
  const changed = { ...base('d1'), ack_wait: 5_000_000_000, max_ack_pending: 20, filter_subject: 'c.b' };
  const second = await ensureConsumer(jsm, 'C', changed, TUNED);
  assert.is(second.outcome, 'updated');
  const info = await jsm.consumers.info('C', 'd1');
  assert.is(info.config.ack_wait, 5_000_000_000);
  assert.is(info.config.max_ack_pending, 20);
  assert.is(info.config.filter_subject, 'c.b');
  assert.is(info.config.deliver_policy, DeliverPolicy.All);
  // A field that is not tuned is not compared, so a different one does not fail the call.
  assert.is((await ensureConsumer(jsm, 'C', { ...changed, deliver_policy: DeliverPolicy.New }, TUNED)).outcome, 'unchanged');
});

test('ensureConsumer from several callers at once, with different settings: every call succeeds', async () => {
  const calls = [1, 2, 3, 4].map((i) => ensureConsumer(jsm, 'C', { ...base('race'), max_ack_pending: 100 * i }, TUNED));
  const outcomes = (await Promise.all(calls)).map((r) => r.outcome);
  assert.ok(outcomes.includes('created'), outcomes.join());
  const info = await jsm.consumers.info('C', 'race');
  assert.ok([100, 200, 300, 400].includes(info.config.max_ack_pending ?? 0), String(info.config.max_ack_pending));
});

test('ensureConsumer recreates a durable deleted since it was made', async () => {
  await ensureConsumer(jsm, 'C', base('gone'), TUNED);
  await jsm.consumers.delete('C', 'gone');
  assert.is((await ensureConsumer(jsm, 'C', base('gone'), TUNED)).outcome, 'created');
});

test.after(async () => {
  await nc.close();
  await server.cleanup();
});

test.run();
