export * from './hosts.ts';
export * from './naming.ts';
export * from './procs.ts';
export { type RunRecord, readRecord } from './record.ts';
export { cleanupStaleHosts, listLinks, listNetns, mountsUnder, parseLinkNames, parseNetnsList, removeRun } from './remove.ts';
