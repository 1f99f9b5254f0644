export * from './app-config.ts';
export * from './hash.ts';
export * from './host-join.ts';
export * from './image-ref.ts';
export * from './messages.ts';
export * from './names.ts';
export * from './progress.ts';
export * from './users.ts';
