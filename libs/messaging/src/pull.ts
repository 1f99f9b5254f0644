import { JetStreamError } from '@nats-io/jetstream';

/**
 * True when a `fetch()` ended because the server's idle heartbeats stopped arriving for two
 * intervals (nats.js ends the fetch with a plain JetStreamError; it has no code). That happens when
 * the process or the server is busy for a second or so, or while a long action runs between two
 * messages of one fetch: it ends that pull request only, and the loop should pull again at once.
 * A consumer that is really gone fails the next fetch with its own error.
 */
export function isMissedHeartbeats(err: unknown): boolean {
  return err instanceof JetStreamError && err.message === 'heartbeats missed';
}
