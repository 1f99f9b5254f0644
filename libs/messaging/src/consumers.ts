import { type ConsumerConfig, type ConsumerInfo, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';

/**
 * A durable consumer brought to the settings of the code that uses it:
 *
 *   info ──missing──▶ add (create) ──"already exists" (someone created it meanwhile)──▶ info again
 *     │
 *     └─ tuned fields differ ──▶ update with just those fields ──missing meanwhile──▶ add
 *
 * Why not simply `consumers.add` every time: on NATS 2.9 it was an upsert, but from 2.10 on it is a
 * create, which fails with "consumer already exists" (10148) as soon as the settings differ (a new
 * NOTIFIER_ACK_WAIT_MS, another batch size...). Only the `tuned` fields are compared and updated;
 * the others (ack and deliver policy) are set when the consumer is created and never changed here
 * (JetStream refuses to change some of them in place).
 */
export type ConsumerSettings = Partial<ConsumerConfig> & { durable_name: string };

export type EnsureConsumerOutcome = 'created' | 'updated' | 'unchanged';

/** JetStream error codes of the consumer API. */
const CONSUMER_NOT_FOUND = 10014;
const CONSUMER_ALREADY_EXISTS = 10148; // 2.10+: a create of an existing consumer with other settings
const CONSUMER_DOES_NOT_EXIST = 10149; // 2.10+: an update of a consumer deleted meanwhile

const hasCode = (err: unknown, code: number) => err instanceof JetStreamApiError && err.code === code;

/**
 * The fields among `tuned` whose wanted value differs from the current config, with the wanted
 * values; empty when the consumer already has them all. A field absent from `wanted` is not compared.
 */
export function consumerDelta(
  current: Partial<ConsumerConfig>,
  wanted: Partial<ConsumerConfig>,
  tuned: readonly (keyof ConsumerConfig)[],
): Partial<ConsumerConfig> {
  const delta: Partial<ConsumerConfig> = {};
  for (const key of tuned) {
    if (wanted[key] === undefined || wanted[key] === current[key]) continue;
    Object.assign(delta, { [key]: wanted[key] });
  }
  return delta;
}

/**
 * Creates the durable when missing, else updates the `tuned` fields that differ from `settings`.
 * Correct on NATS 2.9 (where `add` is an upsert) and on 2.10+ (where it is a create).
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  settings: ConsumerSettings,
  tuned: readonly (keyof ConsumerConfig)[],
): Promise<{ outcome: EnsureConsumerOutcome; info: ConsumerInfo }> {
  const durable = settings.durable_name;
  // Three rounds at most: a consumer created or deleted by someone else between two calls sends us
  // round once more; more than that is not a race but a fault, reported as it is.
  for (let round = 1; ; round++) {
    const last = round >= 3;
    let current: ConsumerInfo | null = null;
    try {
      current = await jsm.consumers.info(stream, durable);
    } catch (err) {
      if (!hasCode(err, CONSUMER_NOT_FOUND)) throw err;
    }
    if (current === null) {
      try {
        return { outcome: 'created', info: await jsm.consumers.add(stream, settings) };
      } catch (err) {
        if (last || !hasCode(err, CONSUMER_ALREADY_EXISTS)) throw err;
        continue;
      }
    }
    const delta = consumerDelta(current.config, settings, tuned);
    if (Object.keys(delta).length === 0) return { outcome: 'unchanged', info: current };
    try {
      return { outcome: 'updated', info: await jsm.consumers.update(stream, durable, delta) };
    } catch (err) {
      if (last || !(hasCode(err, CONSUMER_NOT_FOUND) || hasCode(err, CONSUMER_DOES_NOT_EXIST))) throw err;
    }
  }
}
