export type { KeyObject } from 'node:crypto';
export * from './account-push.ts';
export * from './bus-directory.ts';
export * from './cluster-config.ts';
export * from './connect-options.ts';
export * from './identity.ts';
export * from './permissions.ts';
export * from './region-config.ts';
export * from './signing.ts';
