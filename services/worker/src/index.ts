// Kept for importers of the worker: the name now lives with the permissions that grant it.
export { consumerName } from '@nebula/bus-auth';
export * from './errors.ts';
export * from './executor.ts';
export { hostConnectOptions } from './identity/bus-connection.ts';
export { readCredentialFile, type StoredCredential, storedCredentialSchema, writeCredentialFile } from './identity/credential-file.ts';
export { establishIdentity, type HostIdentity, type HostIdentityConfig } from './identity/host-identity.ts';
export { type HostBus, joinBus } from './identity/join-bus.ts';
export * from './planner/container-spec.ts';
export * from './planner/plan-host.ts';
export * from './runtime/container-runtime.ts';
export * from './runtime/fake-runtime.ts';
export * from './worker.ts';
