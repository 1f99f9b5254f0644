export * from './streams.ts';
export * from './decode.ts';
