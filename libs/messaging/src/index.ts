export * from './consumers.ts';
export * from './decode.ts';
export * from './host-consumers.ts';
export * from './pull.ts';
export * from './replicas.ts';
export * from './streams.ts';
export * from './region-streams.ts';
