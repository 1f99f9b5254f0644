export * from './consumers.ts';
export * from './decode.ts';
export * from './host-consumers.ts';
export * from './pull.ts';
export * from './region-streams.ts';
export * from './regions.ts';
export * from './replicas.ts';
export * from './streams.ts';
