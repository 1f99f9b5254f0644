export * from './decode.ts';
export * from './streams.ts';
