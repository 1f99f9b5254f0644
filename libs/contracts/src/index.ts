export * from './names.ts';
export * from './image-ref.ts';
export * from './app-config.ts';
export * from './messages.ts';
export * from './hash.ts';
export * from './progress.ts';
