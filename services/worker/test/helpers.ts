import { randomBytes } from 'node:crypto';
import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type AppAction, type AppConfigInput, type AppMessage, appConfigSchema, appMessageId, type Result, resultSchema, subjects } from '@nebula/contracts';
import { ensureStreams } from '@nebula/messaging';
import { createLogger } from '@nebula/service-kit';
import { waitFor } from '@nebula/test-kit';

/** Quiet unless TEST_LOG=debug (or info...) is set. */
export const log = createLogger('worker-test', process.env.TEST_LOG ?? 'silent');

export const suffix = () => randomBytes(3).toString('hex');

export function envelope(app: string, revision: number, action: AppAction, config: AppConfigInput, incarnation = 1): AppMessage {
  return {
    v: 1,
    app,
    incarnation,
    revision,
    action,
    config: appConfigSchema.parse(config),
    rollout_id: `rollout-${app}-${incarnation}-${revision}`,
    created_at: new Date().toISOString(),
    actor: 'test',
  };
}

/** The streams, as their owners (the API: APPS; the notifier: RESULTS, HOSTS) create them: a worker only waits for them. */
export async function createStreams(nc: NatsConnection): Promise<void> {
  await ensureStreams(await jetstreamManager(nc), ['apps', 'results', 'hosts']);
}

/** Publishes a revision the way the API does (stream APPS, msgID per revision). */
export async function publishApp(nc: NatsConnection, m: AppMessage): Promise<void> {
  const js: JetStreamClient = jetstream(nc);
  await js.publish(subjects.app(m.app), JSON.stringify(m), { msgID: appMessageId(m) });
}

/** Collects every result published for an app (subscribe before publishing). */
export function collectResults(nc: NatsConnection, app: string) {
  const got: Result[] = [];
  const sub = nc.subscribe(`results.${app}.>`);
  void (async () => {
    for await (const m of sub) got.push(resultSchema.parse(m.json()));
  })();
  return {
    all: got,
    /** Waits for the result of a revision (any status unless given). */
    async waitFor(revision: number, status?: Result['status'], timeoutMs = 30_000): Promise<Result> {
      return waitFor(
        `result of ${app} revision ${revision}${status ? ` (${status})` : ''}`,
        () => got.find((r) => r.revision === revision && (status === undefined || r.status === status)),
        timeoutMs,
      );
    },
    stop: () => sub.unsubscribe(),
  };
}
