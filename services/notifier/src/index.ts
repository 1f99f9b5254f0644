export * from './batcher.ts';
export { newestHeartbeats, writeHeartbeats } from './db/write-heartbeats.ts';
export { newestResults, writeResults } from './db/write-results.ts';
export { foldInstance, type InstanceState, NO_INSTANCES } from './instances.ts';
export type { ConsumerStats, StreamLabel } from './metrics.ts';
export * from './notifier.ts';
export * from './options.ts';
export { compareReceived, isoMicros, type Received } from './stream-consumer.ts';
